"""Band names and patch geometry: the one source of truth for both.

Every pipeline asks this module what a band is called, which bands are optical reflectances
(and so may be brightness-augmented) and how many pixels a patch of a given radius has.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

#: Bands exported by default, in the order models see them.
DEFAULT_BANDS: tuple[str, ...] = ("B2", "B3", "B4", "NDWI", "AVE")
#: Sentinel-2 surface reflectance bands (Earth Engine's S2 SR divided by 10000).
REFLECTANCE_BANDS: tuple[str, ...] = ("B2", "B3", "B4", "B8")
#: Bands whose values are light: augmentation may change their brightness and contrast.
OPTICAL_BANDS: frozenset[str] = frozenset(REFLECTANCE_BANDS)
#: NDWI, computed as Earth Engine's ``normalizedDifference(['B3', 'B8'])``.
NDWI_BAND = "NDWI"
#: Elevation in metres (ALOS AW3D30 ``AVE``/``DSM``).
ELEVATION_BAND = "AVE"
#: RGB bands in display order, for previews.
RGB_BANDS: tuple[str, str, str] = ("B4", "B3", "B2")
#: Sentinel-2 ground sampling distance of B2/B3/B4/B8, metres.
PIXEL_SIZE_M = 10.0
#: Degrees per pixel of Earth Engine's EPSG:4326 grid at ``PIXEL_SIZE_M`` (both axes): the grid
#: patches are sampled on (``patch_crs: EPSG:4326``).
DEGREES_PER_PIXEL = PIXEL_SIZE_M / 111319.49079327357
#: Feature of a shard record: ``(row, col)`` pixel offsets from the centre of every other known
#: dam inside the patch, flattened (absent when there is none).
OTHER_DAMS_KEY = "other_dams"
#: Default patch radius in pixels: 2 * 128 + 1 = 257 pixels across, point at the centre pixel.
DEFAULT_PATCH_RADIUS = 128
#: Feature that joins every record back to its row of the points table (a float, as Earth Engine
#: coerces every number to float).
POINT_INDEX_KEY = "point_index"
#: Label key written by this project; readers also accept the keys listed in parameters.
LABEL_KEY = "label"


@dataclass(frozen=True)
class PatchGeometry:
    """Square patch centred on a point, as Earth Engine's ``neighborhoodToArray`` builds it.

    Attributes:
        radius: Pixels from the centre pixel to the edge (Earth Engine's kernel radius).
        pixel_size_m: Ground size of a pixel in metres.
    """

    radius: int = DEFAULT_PATCH_RADIUS
    pixel_size_m: float = PIXEL_SIZE_M

    def __post_init__(self) -> None:
        if self.radius < 0:
            raise ValueError(f"patch radius must be >= 0, got {self.radius}")

    @property
    def size(self) -> int:
        """Pixels across: ``2 * radius + 1``."""
        return 2 * self.radius + 1

    @property
    def num_values(self) -> int:
        """Values per band in a flattened record: ``size ** 2``."""
        return self.size * self.size


def validate_band_names(bands: Sequence[str]) -> tuple[str, ...]:
    """Check a configured band list: non-empty, no repeats.

    Args:
        bands: Band names in the order a model will see them.

    Returns:
        The band names as a tuple.

    Raises:
        ValueError: If the list is empty or names a band twice.
    """
    names = tuple(bands)
    if not names:
        raise ValueError("the band list is empty: set at least one band, e.g. [B2, B3, B4]")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"band list names {repeated} more than once: {list(names)}")
    return names


def masked_pixels(image: np.ndarray, bands: Sequence[str]) -> np.ndarray | None:
    """Pixels with no Sentinel-2 data: every reflectance band in ``bands`` exactly 0.

    Earth Engine writes masked pixels as 0: outside a scene (the export's buffer past the
    edge) and under a mask hole. Valid reflectance is never exactly 0 in every band (surface
    reflectance is floored at 1e-4), so the test is exact.

    Args:
        image: Raw (not normalised) array whose last axis holds ``bands`` in order.
        bands: Band names in the order of the last axis.

    Returns:
        Boolean ``image.shape[:-1]``, or ``None`` when ``bands`` has no reflectance band.
    """
    channels = [index for index, band in enumerate(bands) if band in REFLECTANCE_BANDS]
    if not channels:
        return None
    return np.all(np.asarray(image)[..., channels] == 0, axis=-1)


def normalize_bands(
    image: np.ndarray, stats: Mapping[str, Mapping[str, float]], bands: Sequence[str]
) -> np.ndarray:
    """Standardise a ``(..., len(bands))`` array with the train split's band statistics.

    This is the NumPy twin of the normalisation the train input pipeline applies, so that a
    scene segmented later sees exactly the scaling the model was trained on. Masked pixels
    (:func:`masked_pixels`) become 0 in every channel, the train mean: raw 0 reflectance would
    otherwise normalise to a strong negative value unlike any real surface. Pixels with a NaN or
    infinite value in any band are no data too (:func:`non_finite_pixels`) and become 0 as well,
    so that no NaN reaches a model's output (training drops such records instead).

    Args:
        image: Array whose last axis holds ``bands`` in order.
        stats: ``stats.json["bands"]``: per band at least ``mean`` and ``std``.
        bands: Band names in the order of the last axis.

    Returns:
        ``(image - mean) / std`` as float32, 0 at masked pixels.

    Raises:
        KeyError: If a band has no statistics.
    """
    missing = [band for band in bands if band not in stats]
    if missing:
        raise KeyError(
            f"no statistics for bands {missing}; re-run shard_tfrecords with these bands "
            "or remove them from the band list"
        )
    mean = np.array([stats[band]["mean"] for band in bands], dtype=np.float32)
    std = np.array([max(float(stats[band]["std"]), 1e-6) for band in bands], dtype=np.float32)
    image = np.asarray(image, dtype=np.float32)
    normalised = (image - mean) / std
    masked = masked_pixels(image, bands)
    if masked is not None:
        normalised[masked] = 0.0
    normalised[non_finite_pixels(image)] = 0.0
    return normalised


def non_finite_pixels(image: np.ndarray) -> np.ndarray:
    """Pixels with a NaN or infinite value in any channel of ``image`` (last axis: channels)."""
    return ~np.isfinite(np.asarray(image)).all(axis=-1)
