"""Farm-pond dams: a small earth embankment on a hillside holding a pond of a hectare or two.

Real regions can hold a farm pond every few km², most of them in no inventory. The embankment
is an arc of a ring round the pond's centre, opening uphill: it is built where the ground lies
below its crest (on a steep slope a short horseshoe, on flat land a closed ring, a "turkey
nest"), and the pond is the part of the ring's inside below the water level, so its upper
shore is the contour of that level. At 10 m the wall is two or three pixels of grass and
bare soil beside a pond a dozen pixels across.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from dam_detection.image_sources.simulated import canvas as cv
from dam_detection.image_sources.simulated.canvas import Canvas
from dam_detection.image_sources.simulated.dams import DamTruth, apply_window
from dam_detection.image_sources.simulated.shapes import component_at
from dam_detection.image_sources.simulated.sites import find_site, window

#: Pond radius in pixels (40-110 m: ponds of about 0.5 to 4 ha).
_RADIUS_PX = (4.0, 11.0)


def draw_farm_pond(
    canvas: Canvas,
    rng: np.random.Generator,
    margin: int,
    interior: np.ndarray | None = None,
) -> DamTruth | None:
    """Build one farm pond and its embankment on open land, or ``None`` when there is no room
    or the ground would hold no water.

    The truth's wall centre is the embankment's lowest point (the middle of its downhill
    arc), where an inventory would place the dam.
    """
    radius = float(rng.uniform(*_RADIUS_PX))
    thickness = float(rng.uniform(1.5, 3.0))
    height = float(rng.uniform(2.0, 6.0))
    freeboard = float(rng.uniform(0.5, 1.5))
    reach = int(np.ceil(radius + thickness)) + 4
    site = find_site(canvas, rng, reach, margin, interior)
    if site is None:
        return None
    rows_sl, cols_sl = window(canvas.shape, site, reach)
    terrain = canvas.terrain[rows_sl, cols_sl]
    y, x = np.mgrid[rows_sl, cols_sl].astype(np.float32)
    x, y = x + 0.5 - np.float32(site[0]), y + 0.5 - np.float32(site[1])
    # Downhill across the site, from the terrain smoothed over the pond's size.
    smooth = ndimage.gaussian_filter(terrain.astype(np.float64), radius / 2.0)
    grad_y, grad_x = np.gradient(smooth)
    middle = (terrain.shape[0] // 2, terrain.shape[1] // 2)
    downhill = -np.array([grad_x[middle], grad_y[middle]])
    if np.hypot(*downhill) < 1e-6:
        angle = float(rng.uniform(0, 2 * np.pi))
        downhill = np.array([np.cos(angle), np.sin(angle)])
    downhill /= np.hypot(*downhill)
    distance = np.hypot(x, y)
    low_point = np.array(site) + downhill * radius
    lowest = float(ndimage.map_coordinates(
        terrain, [[low_point[1] - rows_sl.start - 0.5], [low_point[0] - cols_sl.start - 0.5]],
        order=1, mode="nearest")[0])  # fmt: skip
    crest = lowest + height
    level = crest - freeboard
    ring = np.abs(distance - radius) <= thickness / 2.0
    wall = ring & (terrain < crest + 0.5)  # where the ground lies above the crest, none needed
    inside = distance < radius - thickness / 2.0
    seed = np.array(site) + downhill * (radius - thickness)
    seed_rc = (int(seed[1]) - rows_sl.start, int(seed[0]) - cols_sl.start)
    pond = component_at(inside & (terrain < level), [seed_rc])
    if pond.sum() < 6 or wall.sum() < 4:
        return None
    profile = np.clip(1.0 - np.abs(distance - radius) / (thickness / 2.0 + 0.5), 0.0, 1.0)
    wall_height = np.clip((crest - terrain) * np.minimum(profile * 1.6, 1.0), 0.5, None)
    cover = np.where(np.abs(distance - radius) <= 0.6, cv.DIRT, cv.GRASS)
    if rng.random() < 0.4:  # a freshly cut or grazed bank
        cover = np.where(ring, cv.BARE_SOIL, cover)
    apply_window(canvas, rows_sl, cols_sl, wall, cover, wall_height)
    reservoir = np.zeros(canvas.shape, bool)
    reservoir[rows_sl, cols_sl] = pond
    canvas.add_water(reservoir, level)
    return DamTruth(
        wall_centre=(float(low_point[0]), float(low_point[1])),
        reservoir=reservoir,
        material="earth",
        crest_length_px=float(wall.sum()) / thickness,
        kind="farm_pond",
    )
