"""From ground to light: surface reflectance per cover, seasons, haze, clouds and sensor noise.

Values are Sentinel-2 surface reflectance (Earth Engine's ``S2_SR`` divided by 10000) for
B2 (blue), B3 (green), B4 (red) and B8 (near infrared), in ranges typical of each surface.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dam_detection.image_sources.simulated import canvas as cv
from dam_detection.image_sources.simulated.canvas import Canvas
from dam_detection.image_sources.simulated.noise import smooth_noise

#: Reflectance (B2, B3, B4, B8) per cover class in full summer.
SPECTRA = np.zeros((cv.NUM_COVERS, 4), np.float32)
SPECTRA[cv.WATER] = (0.045, 0.040, 0.022, 0.010)
SPECTRA[cv.FOREST] = (0.022, 0.040, 0.022, 0.280)
SPECTRA[cv.GRASS] = (0.035, 0.065, 0.045, 0.300)
SPECTRA[cv.CROPS] = (0.030, 0.070, 0.035, 0.380)
SPECTRA[cv.DRY_CROPS] = (0.075, 0.105, 0.135, 0.240)
SPECTRA[cv.BARE_SOIL] = (0.085, 0.120, 0.170, 0.240)
SPECTRA[cv.ROCK] = (0.110, 0.130, 0.150, 0.200)
SPECTRA[cv.URBAN] = (0.095, 0.105, 0.115, 0.170)
SPECTRA[cv.CONCRETE] = (0.190, 0.210, 0.230, 0.260)
SPECTRA[cv.ASPHALT] = (0.070, 0.080, 0.090, 0.120)
SPECTRA[cv.DIRT] = (0.110, 0.140, 0.175, 0.220)
SPECTRA[cv.RIPRAP] = (0.120, 0.130, 0.140, 0.170)
SPECTRA[cv.WET_SHORE] = (0.065, 0.080, 0.095, 0.130)
SPECTRA[cv.SAND] = (0.160, 0.190, 0.220, 0.260)
#: What vegetation turns into off-season (dry grass, stubble, bare branches).
SENESCENT = np.array((0.060, 0.085, 0.100, 0.220), np.float32)
_VEGETATION = np.zeros(cv.NUM_COVERS, np.float32)
_VEGETATION[[cv.FOREST, cv.GRASS, cv.CROPS]] = (0.5, 1.0, 1.0)


@dataclass(frozen=True)
class Atmosphere:
    """Per-image nuisances.

    Attributes:
        greenness: 1 in full summer, 0 at the end of a dry season.
        turbidity: 0 clear water, 1 muddy water.
        haze: Additive path radiance scale (0 clear).
        cloud_cover: Share of the image under (partly transparent) cloud.
        noise_std: Sensor noise, reflectance units.
        tint: Multiplicative colour shift per band (residual calibration and illumination).
    """

    greenness: float
    turbidity: float
    haze: float
    cloud_cover: float
    noise_std: float
    tint: tuple[float, float, float, float]


def sample_atmosphere(rng: np.random.Generator, month: int, cloud_rate: float) -> Atmosphere:
    """Draw nuisances for one image; ``month`` (1-12) of the composite's middle sets the season."""
    season = 0.5 + 0.5 * np.cos((month - 7) / 12.0 * 2 * np.pi)
    cloudy = rng.random() < cloud_rate
    return Atmosphere(
        greenness=float(np.clip(season + rng.normal(0, 0.2), 0.1, 1.0)),
        turbidity=float(rng.beta(1.5, 3.0)),
        haze=float(rng.gamma(2.0, 0.25)),
        cloud_cover=float(rng.uniform(0.05, 0.4)) if cloudy else 0.0,
        noise_std=float(rng.uniform(0.002, 0.006)),
        tint=_tint(rng),
    )


def reflectance(canvas: Canvas, atmosphere: Atmosphere) -> np.ndarray:
    """``(4, rows, cols)`` float32 reflectance (B2, B3, B4, B8) of a canvas."""
    rng = canvas.rng
    shape = canvas.shape
    veg = _VEGETATION * np.float32(1.0 - atmosphere.greenness)
    table = SPECTRA * (1.0 - veg[:, None]) + SENESCENT[None, :] * veg[:, None]
    water_row = table[cv.WATER] * (1 - atmosphere.turbidity) + atmosphere.turbidity * np.array(
        (0.070, 0.085, 0.065, 0.025), np.float32
    )
    table[cv.WATER] = water_row
    out = table[canvas.cover].transpose(2, 0, 1) * canvas.brightness[None]
    water = canvas.is_water()
    if water.any():
        # Shallow water shows its bed: brighter and greener near the shore.
        depth = np.where(water, canvas.water - canvas.terrain, 10.0)
        shallow = np.clip(1.0 - depth / 4.0, 0.0, 1.0) * water
        bed = np.array((0.03, 0.04, 0.03, 0.02), np.float32)[:, None, None]
        out[:, water] = (
            table[cv.WATER][:, None] * (1.0 + 0.05 * smooth_noise(rng, shape, 25.0)[water])
        ) + (shallow[water] * bed[:, 0])
    out *= np.asarray(atmosphere.tint, np.float32)[:, None, None]
    haze_field = atmosphere.haze * (1.0 + 0.3 * smooth_noise(rng, shape, 120.0))
    path = np.array((0.045, 0.032, 0.022, 0.012), np.float32)[:, None, None]
    out += path * haze_field[None]
    if atmosphere.cloud_cover > 0:
        _add_clouds(out, rng, atmosphere.cloud_cover)
    out += rng.standard_normal(out.shape, dtype=np.float32) * np.float32(atmosphere.noise_std)
    return np.clip(out, 1e-4, 1.5, out=out)


def _add_clouds(out: np.ndarray, rng: np.random.Generator, cover: float) -> None:
    shape = out.shape[1:]
    field = smooth_noise(rng, shape, 60.0, octaves=4)
    cut = np.quantile(field, 1.0 - cover)
    alpha = np.clip((field - cut) / 0.8, 0.0, 1.0) * np.float32(rng.uniform(0.4, 0.95))
    shift = rng.integers(-15, 16, size=2)
    shadow = np.roll(alpha, tuple(int(v) for v in shift), axis=(0, 1)) * np.float32(0.45)
    cloud = np.array((0.38, 0.37, 0.37, 0.40), np.float32)[:, None, None]
    out *= 1.0 - shadow[None]
    out *= 1.0 - alpha[None]
    out += alpha[None] * cloud


def _tint(rng: np.random.Generator) -> tuple[float, float, float, float]:
    blue, green, red, nir = (float(v) for v in rng.normal(1.0, 0.04, 4))
    return blue, green, red, nir
