"""Land cover of every kind: forest, grass, crop parcels, bare soil, rock, towns and roads."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dam_detection.image_sources.simulated import canvas as cv
from dam_detection.image_sources.simulated.canvas import Canvas
from dam_detection.image_sources.simulated.noise import smooth_noise
from dam_detection.image_sources.simulated.shapes import stamp_polyline, wandering_line


@dataclass(frozen=True)
class Biome:
    """Fractions that shape a landscape (drawn per patch or per scene).

    Attributes:
        forest: Share of land under forest.
        crops: Share under crop parcels.
        bare: Share of bare soil.
        rock_slope: Terrain gradient (m/px) above which ground turns to rock.
        towns: Expected number of settlements per 250 x 250 px.
    """

    forest: float
    crops: float
    bare: float
    rock_slope: float
    towns: float


def sample_biome(rng: np.random.Generator) -> Biome:
    """A temperate, agricultural, arid or mixed landscape."""
    kind = rng.choice(["temperate", "agricultural", "arid", "mixed"])
    if kind == "temperate":
        return Biome(rng.uniform(0.4, 0.8), rng.uniform(0.0, 0.2), 0.03, rng.uniform(5, 9), 0.3)
    if kind == "agricultural":
        return Biome(rng.uniform(0.05, 0.3), rng.uniform(0.4, 0.8), 0.05, rng.uniform(6, 10), 0.6)
    if kind == "arid":
        return Biome(
            rng.uniform(0.0, 0.1),
            rng.uniform(0.0, 0.2),
            rng.uniform(0.3, 0.7),
            rng.uniform(3, 6),
            0.3,
        )
    return Biome(
        rng.uniform(0.2, 0.5), rng.uniform(0.1, 0.4), rng.uniform(0.05, 0.3), rng.uniform(4, 8), 0.5
    )


def paint_land_cover(canvas: Canvas, biome: Biome) -> None:
    """Cover the dry, unbuilt pixels that still hold the default cover."""
    rng = canvas.rng
    shape = canvas.shape
    free = (canvas.cover == cv.GRASS) & ~canvas.is_water() & (canvas.structure <= 0)
    zones = smooth_noise(rng, shape, 70.0, octaves=3)
    detail = smooth_noise(rng, shape, 18.0, octaves=2)
    cover = np.full(shape, cv.GRASS, np.uint8)
    # Quantile thresholds turn the biome's shares into areas of the noise field.
    forest_cut = np.quantile(zones, 1.0 - biome.forest) if biome.forest > 0 else np.inf
    crops_cut = np.quantile(zones, biome.crops) if biome.crops > 0 else -np.inf
    cover[zones >= forest_cut] = cv.FOREST
    crop_zone = zones <= crops_cut
    parcels, parcel_brightness = _parcels(rng, shape)
    cover[crop_zone] = parcels[crop_zone]
    bare_cut = np.quantile(detail, 1.0 - biome.bare) if biome.bare > 0 else np.inf
    cover[(detail >= bare_cut) & ~crop_zone] = cv.BARE_SOIL
    gy, gx = np.gradient(canvas.terrain)
    steep = np.hypot(gx, gy) > biome.rock_slope * (1.0 + 0.3 * detail)
    cover[steep] = cv.ROCK
    canvas.cover[free] = cover[free]
    texture = 1.0 + 0.10 * detail + 0.06 * smooth_noise(rng, shape, 4.0)
    texture = np.where(crop_zone, parcel_brightness * (1.0 + 0.03 * detail), texture)
    canvas.brightness = (canvas.brightness * texture).astype(np.float32)


def _parcels(rng: np.random.Generator, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """A rotated grid of fields, each with its own crop state and brightness."""
    angle = rng.uniform(0, np.pi)
    width, height = rng.uniform(15, 50), rng.uniform(10, 35)
    # One row of x and one column of y, broadcast: the same products as full coordinate grids.
    x = np.arange(shape[1], dtype=np.float32)[None, :]
    y = np.arange(shape[0], dtype=np.float32)[:, None]
    u = x * np.cos(angle) + y * np.sin(angle)
    v = -x * np.sin(angle) + y * np.cos(angle)
    # int32 holds the hash for any canvas up to ~20,000 pixels across, and divides faster.
    iu, iv = np.floor(u / width).astype(np.int32), np.floor(v / height).astype(np.int32)
    ids = (iu * 7919 + iv * 104729) % 1021
    table_cover = rng.choice(
        [cv.CROPS, cv.DRY_CROPS, cv.BARE_SOIL, cv.GRASS], size=1021, p=[0.45, 0.25, 0.15, 0.15]
    ).astype(np.uint8)
    table_brightness = rng.uniform(0.8, 1.2, 1021).astype(np.float32)
    cover = table_cover[ids]
    # Field boundaries (hedges, tracks) are a pixel of grass.
    edge = ((u % width) < 1.0) | ((v % height) < 1.0)
    cover[edge & (rng.random() < 0.7)] = cv.GRASS
    return cover, table_brightness[ids]


def add_towns(canvas: Canvas, expected: float) -> None:
    """Settlements: blobs of urban cover with building heights, on dry land."""
    rng = canvas.rng
    rows, cols = canvas.shape
    count = rng.poisson(expected * rows * cols / 250.0**2)
    for _ in range(count):
        cx, cy = rng.uniform(0, cols), rng.uniform(0, rows)
        radius = rng.uniform(10, 45)
        reach = int(radius * 1.6) + 2
        r0, r1 = max(int(cy) - reach, 0), min(int(cy) + reach, rows)
        c0, c1 = max(int(cx) - reach, 0), min(int(cx) + reach, cols)
        if r1 <= r0 or c1 <= c0:
            continue
        window = (slice(r0, r1), slice(c0, c1))
        y, x = np.mgrid[r0:r1, c0:c1].astype(np.float32)
        wobble = smooth_noise(rng, (r1 - r0, c1 - c0), 12.0, octaves=2)
        blob = np.hypot(x - cx, y - cy) / radius + 0.3 * wobble < 1.0
        blob &= np.isnan(canvas.water[window]) & (canvas.structure[window] <= 0)
        canvas.cover[window][blob] = cv.URBAN
        canvas.structure[window][blob] = rng.uniform(3, 12)
        texture = 1.0 + 0.25 * smooth_noise(rng, (r1 - r0, c1 - c0), 1.5)
        canvas.brightness[window][blob] = texture[blob]


def add_roads(canvas: Canvas, count: int) -> None:
    """Roads and tracks crossing the land; they stop at water (no unlabelled crossings)."""
    rng = canvas.rng
    rows, cols = canvas.shape
    for _ in range(count):
        start = np.array([rng.uniform(0, cols), rng.uniform(0, rows)])
        angle = rng.uniform(0, 2 * np.pi)
        direction = np.array([np.cos(angle), np.sin(angle)])
        length = rng.uniform(0.5, 1.5) * max(rows, cols)
        line = wandering_line(rng, start - direction * length / 2, direction, length)
        mask = stamp_polyline(canvas.shape, line, float(rng.uniform(0.5, 1.1)))
        mask &= ~canvas.is_water() & (canvas.structure <= 0)
        canvas.cover[mask] = cv.ASPHALT if rng.random() < 0.4 else cv.DIRT
