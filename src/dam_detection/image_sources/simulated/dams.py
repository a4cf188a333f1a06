"""Dams: a wall across a valley holding a reservoir whose flat surface meets the contours.

The wall is placed across the river at arc length ``s_dam``. Its crest height is drawn, the
wall is extended on both sides until the valley walls rise above the crest, and the
reservoir is the connected part of the terrain below the water level on the upstream side:
the shoreline is the contour at that level, so it follows the terrain by construction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from dam_detection.image_sources.simulated import canvas as cv
from dam_detection.image_sources.simulated.canvas import Canvas
from dam_detection.image_sources.simulated.rivers import RiverField, Valley
from dam_detection.image_sources.simulated.shapes import (
    component_at,
    local_frame,
    point_at,
    sample,
    stamp_polyline,
    wandering_line,
)

_WINDOW = 200  # half-size in pixels of the window the wall is drawn in


#: The kinds of dam the planet builds: a wall across a valley holding a reservoir, a small
#: embankment round a farm pond on a hillside (:mod:`.farm_ponds`), a low weir across a river.
DAM_KINDS = ("reservoir", "farm_pond", "weir")


@dataclass
class DamTruth:
    """What was built: the wall centre ``(x, y)`` in pixels, the reservoir mask, the wall's
    material and crest length, and the dam's kind (:data:`DAM_KINDS`).
    """

    wall_centre: tuple[float, float]
    reservoir: np.ndarray
    material: str
    crest_length_px: float
    kind: str = "reservoir"


def _window(shape: tuple[int, int], centre: np.ndarray) -> tuple[slice, slice]:
    rows, cols = shape
    cx, cy = int(centre[0]), int(centre[1])
    return (
        slice(max(cy - _WINDOW, 0), min(cy + _WINDOW, rows)),
        slice(max(cx - _WINDOW, 0), min(cx + _WINDOW, cols)),
    )


def _wall_extent(
    terrain: np.ndarray, centre: np.ndarray, normal: np.ndarray, crest: float, side: int
) -> float:
    """Distance along ``side * normal`` from the river to where the ground rises above crest."""
    u = np.arange(1.0, _WINDOW - 4, 1.0)
    x = centre[0] + side * normal[0] * u
    y = centre[1] + side * normal[1] * u
    ground = sample(terrain, x, y, outside=np.inf)
    above = np.nonzero(ground >= crest)[0]
    return float(u[above[0]]) if above.size else float(u[-1])


def draw_dam(
    canvas: Canvas,
    centreline: np.ndarray,
    field: RiverField,
    valley: Valley,
    s_dam: float,
    domain: np.ndarray | None = None,
    interior: np.ndarray | None = None,
    kind: str = "reservoir",
    rng: np.random.Generator | None = None,
) -> DamTruth:
    """Build a dam across the river at ``s_dam`` and fill its reservoir.

    A ``weir`` is the same construction kept low: a thin concrete sill 1.5-4 m above the
    river, whose pool is the river widened to the contour of its crest for a short reach,
    with no road and no spillway: a line of a pixel or two across the water at 10 m.

    Args:
        canvas: Canvas whose terrain already holds the valley and whose river is drawn.
        centreline: The river's polyline ``(n, 2)``.
        field: The river's distance field on this canvas.
        valley: The river's valley.
        s_dam: Arc length of the wall along the river, pixels.
        domain: Pixels that belong to this river's valley (``None``: all).
        interior: Pixels the reservoir may reach (``None``: all); a dam whose lake would
            reach beyond is lowered, so that no lake is cut by a tile edge.
        kind: ``reservoir`` or ``weir``.
        rng: Draws the dam's dimensions (``None``: the canvas's generator).

    Returns:
        The dam's truth.
    """
    rng = canvas.rng if rng is None else rng
    centre, tangent = point_at(centreline, s_dam)
    normal = np.array([-tangent[1], tangent[0]])
    base = float(valley.level(s_dam))
    weir = kind == "weir"
    if weir:
        earth, height = False, float(rng.uniform(1.5, 4.0))
        freeboard, thickness = float(rng.uniform(0.2, 0.6)), float(rng.uniform(1.0, 2.0))
        arch, abut = 0.0, float(rng.uniform(1.0, 2.0))
    else:
        earth = rng.random() < 0.55
        # Keep the crest under the hilltops (walls minus their roughness) so that the
        # reservoir cannot spill round the wall ends.
        height = float(rng.uniform(0.25, 0.7) * valley.depth)
        height = max(min(height, valley.depth - 2.5 * valley.roughness), 8.0)
        freeboard = float(rng.uniform(1.0, 4.0))
        thickness = float(rng.uniform(6, 14) if earth else rng.uniform(2, 4))
        arch = float(rng.uniform(0.1, 0.3) if (not earth and rng.random() < 0.5) else 0.0)
        if earth and rng.random() < 0.3:
            arch = float(rng.uniform(-0.12, 0.12))
        abut = float(rng.uniform(2.0, 5.0))
    rows_sl, cols_sl = _window(canvas.shape, centre)
    origin = np.array([cols_sl.start, rows_sl.start], dtype=np.float64)
    window_shape = (rows_sl.stop - rows_sl.start, cols_sl.stop - cols_sl.start)
    a, u = local_frame(window_shape, centre - origin, tangent)
    seed_points = [centre - tangent * (thickness / 2.0 + k) for k in range(2, 8)]
    seeds = [(int(p[1]), int(p[0])) for p in seed_points]
    allowed = np.ones(canvas.shape, bool) if domain is None else domain
    impounded = canvas.notes.setdefault("impounded", np.zeros(canvas.shape, bool))
    walls = canvas.notes.setdefault("walls", np.zeros(canvas.shape, bool))

    # A dam whose lake would spill round its ends is lowered until it holds (or gives up and
    # keeps only the upstream side).
    for attempt in range(5):
        crest = base + height
        level = crest - freeboard
        left = _wall_extent(canvas.terrain, centre, normal, crest, -1)
        right = _wall_extent(canvas.terrain, centre, normal, crest, +1)
        half = max((left + right) / 2.0, 4.0)
        centre_u = (right - left) / 2.0  # the wall's own middle, off the river if asymmetric
        bulge = arch * half

        def bend(
            across: Any, centre_u: float = centre_u, half: float = half, bulge: float = bulge
        ) -> Any:
            # Arch offset, zero where the wall crosses the river so the point stays on it.
            shape = np.clip(1.0 - ((across - centre_u) / half) ** 2, 0.0, None)
            return np.float32(bulge) * (shape - max(1.0 - (centre_u / half) ** 2, 0.0))

        offset = a + bend(u)  # along-flow coordinate measured from the wall's centreline
        span = (u >= -left - abut) & (u <= right + abut)
        wall = span & (np.abs(offset) <= thickness / 2.0)
        blocked = np.zeros(canvas.shape, bool)
        blocked[rows_sl, cols_sl] = span & (offset > -thickness / 2.0) & (offset < 12.0)
        # Another dam's lake is not flooded again (it would change that lake's level), and
        # another dam's wall holds: a lake ends at the foot of the next dam upstream. Only a
        # dam's works hold water: a bridge deck or a levee in the way drowns (a deck that
        # held a lake would be a dam, with a step in the water across it).
        held = impounded | walls
        candidate = (canvas.terrain < level) & ~blocked & allowed & ~held
        reservoir = component_at(candidate, seeds)
        beyond = np.zeros(canvas.shape, bool)
        beyond[rows_sl, cols_sl] = (offset > thickness / 2.0 + 2.0) & (np.abs(u) < _WINDOW)
        cut = interior is not None and bool((reservoir & ~interior).any())
        leaks = bool((reservoir & beyond).any() or (reservoir & (field.s > s_dam + 80)).any())
        leaks = leaks or cut or _spills_sideways(reservoir, allowed, canvas.terrain < level)
        if not leaks:
            upstream = ~blocked
            break
        height *= 0.75
        if attempt == 4 or height < 6.0:
            near_wall = (u >= -left - abut - 15) & (u <= right + abut + 15) & (np.abs(a) < 40)
            upstream = field.s < s_dam
            upstream[rows_sl, cols_sl] = np.where(
                near_wall, offset < -thickness / 2.0, upstream[rows_sl, cols_sl]
            )
            keep = allowed if interior is None else allowed & interior
            reservoir = component_at((canvas.terrain < level) & upstream & keep & ~held, seeds)
            break

    ground = canvas.terrain[rows_sl, cols_sl]
    if earth:
        # Trapezoidal fill: the DSM sees the slopes, the crest carries a track.
        profile = np.clip(1.0 - np.abs(offset) / (thickness / 2.0 + 0.5), 0.0, 1.0)
        wall_height = np.clip((crest - ground) * np.minimum(profile * 1.6, 1.0), 0.5, None)
        cover = np.where(offset < -thickness / 6.0, cv.RIPRAP, cv.GRASS)
        cover = np.where(np.abs(offset) <= 0.75, cv.DIRT, cover)
    else:
        wall_height = np.clip(crest - ground, 1.0, None)
        cover = np.full(window_shape, cv.CONCRETE)
    apply_window(canvas, rows_sl, cols_sl, wall, cover, wall_height)
    walls[rows_sl, cols_sl] |= wall
    if not weir:
        _drawdown_ring(canvas, reservoir, upstream, level, rng)
    canvas.add_water(reservoir, level)
    impounded |= reservoir
    truth = DamTruth(
        wall_centre=(float(centre[0]), float(centre[1])),
        reservoir=reservoir,
        material="earth" if earth else "concrete",
        crest_length_px=left + right + 2 * abut,
        kind=kind,
    )
    if weir:
        return truth

    if rng.random() < (0.7 if earth else 0.5):
        for side, extent in ((-1, left), (1, right)):
            across = side * (extent + abut)
            start = centre + normal * across - tangent * float(bend(np.float32(across)))
            road = wandering_line(rng, start, side * normal, rng.uniform(40, 160))
            mask = stamp_polyline(canvas.shape, road, 0.6) & ~canvas.is_water()
            canvas.add_structure(mask, cv.ASPHALT if rng.random() < 0.5 else cv.DIRT, 0.0)
    if rng.random() < 0.4:
        _spillway(
            canvas, centre, tangent, normal, right if rng.random() < 0.5 else -left, thickness, rng
        )
    return truth


def _spills_sideways(reservoir: np.ndarray, allowed: np.ndarray, below: np.ndarray) -> bool:
    """Whether a lake meets the edge of its valley's domain where the ground beyond lies
    under its level: the water would run into the next valley, and a lake cut there would
    end in a straight shore with a step in the water, a wall no one built.
    """
    rows, cols = np.nonzero(reservoir)
    if rows.size == 0:
        return False
    box = (
        slice(max(int(rows.min()) - 1, 0), int(rows.max()) + 2),
        slice(max(int(cols.min()) - 1, 0), int(cols.max()) + 2),
    )
    edge = ndimage.binary_dilation(reservoir[box]) & ~reservoir[box]
    return bool((edge & ~allowed[box] & below[box]).any())


def apply_window(
    canvas: Canvas,
    rows_sl: slice,
    cols_sl: slice,
    mask: np.ndarray,
    cover: np.ndarray | int,
    height: np.ndarray | float,
) -> None:
    """Build a wall given in window coordinates: ``mask``, its ``cover`` and ``height`` above
    ground (arrays of the window's shape, or scalars) replace whatever the canvas had there.
    """
    full = np.zeros(canvas.shape, bool)
    full[rows_sl, cols_sl] = mask
    cover_full = np.zeros(canvas.shape, np.uint8)
    cover_full[rows_sl, cols_sl] = cover
    height_full = np.zeros(canvas.shape, np.float32)
    height_full[rows_sl, cols_sl] = height
    canvas.water[full] = np.nan
    canvas.cover[full] = cover_full[full]
    canvas.structure[full] = height_full[full]


def _drawdown_ring(
    canvas: Canvas,
    water: np.ndarray,
    allowed: np.ndarray,
    level: float,
    rng: np.random.Generator,
) -> None:
    """Bare banks just above a lake or reservoir level, where the water drew down in summer."""
    if not water.any() or rng.random() < 0.4:
        return
    rise = float(rng.uniform(1.0, 5.0))
    near = ndimage.binary_dilation(water, iterations=int(rng.integers(3, 9)))
    ring = near & ~water & allowed & (canvas.terrain < level + rise) & ~canvas.is_water()
    ring &= canvas.structure <= 0
    canvas.cover[ring] = cv.WET_SHORE if rng.random() < 0.5 else cv.BARE_SOIL


def _spillway(
    canvas: Canvas,
    centre: np.ndarray,
    tangent: np.ndarray,
    normal: np.ndarray,
    u_at: float,
    thickness: float,
    rng: np.random.Generator,
) -> None:
    start = centre + normal * u_at * 0.8 + tangent * thickness / 2.0
    chute = np.vstack([start, start + tangent * rng.uniform(15, 40)])
    mask = stamp_polyline(canvas.shape, chute, float(rng.uniform(0.8, 2.0))) & ~canvas.is_water()
    canvas.add_structure(mask, cv.CONCRETE, 1.0)
    canvas.notes["walls"] |= mask
