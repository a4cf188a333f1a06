"""Look-alikes from mining: quarries and tailings ponds.

Neither is a dam a user wants found, and both put what a dam has side by side: steep bright
faces beside water (a quarry's pit lake), an embankment round water (a tailings pond, whose
wall is an earth dam in all but purpose). They sit on open land away from rivers.
"""

from __future__ import annotations

import numpy as np

from dam_detection.image_sources.simulated import canvas as cv
from dam_detection.image_sources.simulated.canvas import Canvas
from dam_detection.image_sources.simulated.noise import smooth_noise
from dam_detection.image_sources.simulated.shapes import stamp_polyline, wandering_line
from dam_detection.image_sources.simulated.sites import find_site, window

#: Look-alike kinds this module builds.
QUARRY, TAILINGS = "quarry", "tailings"


def _open_blob(
    canvas: Canvas, rng: np.random.Generator, radius: float, reach: int, margin: int,
    interior: np.ndarray | None,
) -> tuple[tuple[float, float], slice, slice, np.ndarray] | None:  # fmt: skip
    """A site with ``reach`` pixels of open land, its window, and the normalised radius
    (< 1 inside) of an irregular ellipse of ``radius`` round it; ``None`` without room.
    """
    site = find_site(canvas, rng, reach, margin, interior)
    if site is None:
        return None
    rows_sl, cols_sl = window(canvas.shape, site, reach)
    y, x = np.mgrid[rows_sl, cols_sl].astype(np.float32)
    x, y = x + 0.5 - np.float32(site[0]), y + 0.5 - np.float32(site[1])
    angle, ratio = float(rng.uniform(0, np.pi)), float(rng.uniform(0.6, 1.0))
    along = x * np.cos(angle) + y * np.sin(angle)
    across = (-x * np.sin(angle) + y * np.cos(angle)) / ratio
    shape = (rows_sl.stop - rows_sl.start, cols_sl.stop - cols_sl.start)
    rho = np.hypot(along, across) / radius + 0.15 * smooth_noise(rng, shape, radius / 3.0)
    return site, rows_sl, cols_sl, rho


def draw_quarry(
    canvas: Canvas, rng: np.random.Generator, margin: int, interior: np.ndarray | None = None
) -> tuple[float, float] | None:
    """An open pit cut in benches, bare rock with a spoil rim, a haul track, often a pit lake.

    Returns:
        The pit's centre ``(x, y)`` in pixels, or ``None`` when there was no room.
    """
    radius = float(rng.uniform(12.0, 30.0))
    found = _open_blob(canvas, rng, radius, int(radius * 1.3) + 4, margin, interior)
    if found is None:
        return None
    site, rows_sl, cols_sl, rho = found
    pit = rho < 1.0
    depth = float(rng.uniform(15.0, 40.0))
    bench = float(rng.uniform(4.0, 8.0))
    cut = np.floor(depth * np.sqrt(np.clip(1.0 - rho**2, 0.0, 1.0)) / bench) * bench
    terrain = canvas.terrain[rows_sl, cols_sl]
    terrain -= np.where(pit, cut, 0.0).astype(np.float32)
    cover = canvas.cover[rows_sl, cols_sl]
    cover[pit] = cv.ROCK
    cover[(rho >= 1.0) & (rho < 1.0 + 3.0 / radius)] = cv.BARE_SOIL  # spoil round the rim
    brightness = canvas.brightness[rows_sl, cols_sl]
    brightness[pit] = (1.0 + 0.2 * smooth_noise(rng, pit.shape, 2.0))[pit]
    if rng.random() < 0.6:
        bottom = float(terrain[pit].min())
        level = bottom + float(rng.uniform(2.0, min(10.0, depth / 2)))
        lake = np.zeros(canvas.shape, bool)
        lake[rows_sl, cols_sl] = pit & (terrain < level)
        canvas.add_water(lake, level)
    start = np.array(site) + np.array([radius, 0.0])
    track = wandering_line(rng, start, np.array([1.0, 0.0]), float(rng.uniform(60, 200)))
    mask = stamp_polyline(canvas.shape, track, 1.0) & ~canvas.is_water()
    canvas.add_structure(mask & (canvas.structure <= 0), cv.DIRT, 0.0)
    return site


def draw_tailings_pond(
    canvas: Canvas, rng: np.random.Generator, margin: int, interior: np.ndarray | None = None
) -> tuple[float, float] | None:
    """A closed earth embankment round a flat pond and its drying beaches of settled tailings.

    Returns:
        The pond's centre ``(x, y)`` in pixels, or ``None`` when there was no room.
    """
    radius = float(rng.uniform(12.0, 30.0))
    thickness = float(rng.uniform(3.0, 6.0))
    found = _open_blob(canvas, rng, radius, int(radius * 1.3 + thickness) + 4, margin, interior)
    if found is None:
        return None
    site, rows_sl, cols_sl, rho = found
    band = thickness / radius
    wall = (rho >= 1.0) & (rho < 1.0 + band)
    inside = rho < 1.0
    terrain = canvas.terrain[rows_sl, cols_sl]
    crest = float(terrain[wall].max()) + float(rng.uniform(3.0, 12.0))
    level = crest - float(rng.uniform(1.0, 3.0))
    # Beaches of settled tailings slope from one side; the water lies against the other.
    angle = float(rng.uniform(0, 2 * np.pi))
    y, x = np.mgrid[rows_sl, cols_sl].astype(np.float32)
    toward = (x + 0.5 - site[0]) * np.cos(angle) + (y + 0.5 - site[1]) * np.sin(angle)
    water = inside & (toward > float(rng.uniform(-0.3, 0.3)) * radius)
    terrain[inside] = np.where(water[inside], level - 2.0, level + 0.3)
    structure = np.zeros(canvas.shape, bool)
    structure[rows_sl, cols_sl] = wall
    height = np.zeros(canvas.shape, np.float32)
    height[rows_sl, cols_sl] = np.clip(crest - terrain, 0.5, None)
    canvas.add_structure(structure, cv.BARE_SOIL, height)
    beach = inside & ~water
    canvas.cover[rows_sl, cols_sl][beach] = cv.SAND if rng.random() < 0.5 else cv.WET_SHORE
    pond = np.zeros(canvas.shape, bool)
    pond[rows_sl, cols_sl] = water
    canvas.add_water(pond, level)
    return site
