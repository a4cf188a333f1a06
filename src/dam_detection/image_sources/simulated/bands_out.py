"""From a canvas to exported bands: reflectance, NDWI, elevation, voids and masks."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dam_detection.bands import ELEVATION_BAND, NDWI_BAND, REFLECTANCE_BANDS
from dam_detection.image_sources.simulated.canvas import Canvas
from dam_detection.image_sources.simulated.spectra import Atmosphere, reflectance

#: Bands the simulated Earth can render.
SUPPORTED_BANDS: tuple[str, ...] = (*REFLECTANCE_BANDS, NDWI_BAND, ELEVATION_BAND)
#: Bands that come from the Sentinel-2 composite (masked together where it has no data).
OPTICAL_GROUP: tuple[str, ...] = (*REFLECTANCE_BANDS, NDWI_BAND)


def check_bands(bands: Sequence[str]) -> None:
    """Raise ``ValueError`` naming any band the simulated Earth cannot render."""
    unknown = [band for band in bands if band not in SUPPORTED_BANDS]
    if unknown:
        raise ValueError(
            f"the simulated Earth renders {list(SUPPORTED_BANDS)}; remove {unknown} from the "
            "band list or switch image_source.kind to earthengine"
        )


def normalized_difference(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Earth Engine's ``normalizedDifference``: ``(a - b) / (a + b)``, 0 where both are 0."""
    a, b = first.astype(np.float64), second.astype(np.float64)
    total = a + b
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(total != 0, (a - b) / np.where(total != 0, total, 1.0), 0.0)
    return ratio.astype(np.float32)


def elevation_model(canvas: Canvas, rng: np.random.Generator) -> np.ndarray:
    """ALOS-like ``AVE``: the surface the DSM sees, with its noise, in whole metres."""
    dsm = canvas.surface_elevation()
    dsm = dsm + rng.normal(0.0, 0.8, dsm.shape).astype(np.float32) * ~canvas.is_water()
    return np.round(dsm).astype(np.float32)


def void_stripes(
    shape: tuple[int, int], rng: np.random.Generator, rate: float, keep_clear: tuple[int, int]
) -> np.ndarray:
    """Stripes of missing elevation (ALOS voids) that avoid ``keep_clear`` ``(row, col)``."""
    mask = np.zeros(shape, bool)
    if rng.random() >= rate:
        return mask
    rows, cols = shape
    width = int(rng.integers(2, 12))
    along_rows = rng.random() < 0.5
    extent = cols if along_rows else rows
    centre = keep_clear[1] if along_rows else keep_clear[0]
    for _ in range(4):
        start = int(rng.integers(0, max(extent - width, 1)))
        if not start <= centre < start + width:
            break
    else:
        return mask
    if along_rows:
        mask[:, start : start + width] = True
    else:
        mask[start : start + width, :] = True
    return mask


def render_bands(
    canvas: Canvas,
    atmosphere: Atmosphere,
    bands: Sequence[str],
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """Every requested band of a canvas as ``(rows, cols)`` float32, before any masking."""
    out: dict[str, np.ndarray] = {}
    need_optical = any(band in OPTICAL_GROUP for band in bands)
    if need_optical:
        rho = reflectance(canvas, atmosphere)
        # Earth Engine stores S2 SR as integers / 10000: keep that quantisation.
        rho = np.round(rho * 10000.0) / np.float32(10000.0)
        for index, name in enumerate(REFLECTANCE_BANDS):
            out[name] = rho[index]
        out[NDWI_BAND] = normalized_difference(out["B3"], out["B8"])
    if ELEVATION_BAND in bands:
        out[ELEVATION_BAND] = elevation_model(canvas, rng)
    return {band: out[band] for band in bands}


def apply_masks(
    images: dict[str, np.ndarray], optical_mask: np.ndarray, elevation_mask: np.ndarray
) -> None:
    """Zero masked pixels, as Earth Engine fills masked pixels inside an exported patch."""
    for band, image in images.items():
        mask = elevation_mask if band == ELEVATION_BAND else optical_mask
        if mask.any():
            image[mask] = 0.0
