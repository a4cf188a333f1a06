"""Hard negatives: bridges, levees and natural lake outlets.

Each one shares something with a dam (a bright line across or along water, a flat lake in a
valley, a shoreline that follows the contours) and differs in what a dam cannot have: water
at the same level on both sides, no wall where a lake drains, a line *along* the water.
"""

from __future__ import annotations

import numpy as np

from dam_detection.image_sources.simulated import canvas as cv
from dam_detection.image_sources.simulated.canvas import Canvas
from dam_detection.image_sources.simulated.dams import _drawdown_ring
from dam_detection.image_sources.simulated.rivers import RiverField, Valley
from dam_detection.image_sources.simulated.shapes import (
    component_at,
    point_at,
    stamp_polyline,
    wandering_line,
)


def draw_bridge(
    canvas: Canvas, centreline: np.ndarray, valley: Valley, s_bridge: float
) -> tuple[float, float]:
    """A deck across the river at ``s_bridge`` with a road continuing on both banks.

    Returns:
        The deck centre ``(x, y)`` in pixels.
    """
    rng = canvas.rng
    centre, tangent = point_at(centreline, s_bridge)
    normal = np.array([-tangent[1], tangent[0]])
    # A skewed crossing is common; the road keeps its own direction.
    skew = float(rng.normal(0.0, 0.25))
    road_dir = normal * np.cos(skew) + tangent * np.sin(skew)
    overhang = float(rng.uniform(3.0, 10.0))
    reach = valley.river_width / 2.0 / max(abs(np.cos(skew)), 0.3) + overhang
    half_width = float(rng.uniform(0.6, 1.6))
    clearance = float(rng.uniform(4.0, 20.0))
    level = float(valley.level(s_bridge))
    decks = [0.0] if rng.random() < 0.8 else [-1.5 * half_width - 1.0, 1.5 * half_width + 1.0]
    material = cv.CONCRETE if rng.random() < 0.5 else cv.ASPHALT
    for shift in decks:
        middle = centre + tangent * shift
        deck_line = np.vstack([middle - road_dir * reach, middle + road_dir * reach])
        deck = stamp_polyline(canvas.shape, deck_line, half_width)
        height = np.maximum(level + clearance - canvas.terrain, 0.5)
        canvas.add_structure(deck, material, height)
    for side in (-1.0, 1.0):
        start = centre + side * road_dir * reach
        road = wandering_line(rng, start, side * road_dir, rng.uniform(60, 400))
        mask = stamp_polyline(canvas.shape, road, half_width) & ~canvas.is_water()
        canvas.add_structure(mask & (canvas.structure <= 0), cv.ASPHALT, 0.0)
    return float(centre[0]), float(centre[1])


def draw_levee(
    canvas: Canvas,
    centreline: np.ndarray,
    field: RiverField,
    valley: Valley,
    side: float,
    keep: np.ndarray | None = None,
) -> np.ndarray:
    """An embankment with a road on top along one bank: a straight bright line next to water.

    ``keep`` limits it to a stretch of the river (``None``: the whole bank).
    """
    rng = canvas.rng
    gap = float(rng.uniform(0.5, 3.0))
    width = float(rng.uniform(1.0, 3.0))
    inner = valley.river_width / 2.0 + gap
    mask = (field.side == side) & (field.distance > inner) & (field.distance <= inner + width)
    if keep is not None:
        mask &= keep
    height = float(rng.uniform(2.0, 6.0))
    material = rng.choice([cv.ASPHALT, cv.CONCRETE, cv.DIRT, cv.GRASS])
    crest = np.float32(valley.level(field.s)) + height
    canvas.add_structure(mask, int(material), np.maximum(crest - canvas.terrain, 0.5))
    return mask


def carve_lake(
    canvas: Canvas,
    field: RiverField,
    valley: Valley,
    s_outlet: float,
    length: float,
    domain: np.ndarray | None = None,
) -> np.ndarray:
    """A natural lake in the valley draining at ``s_outlet``: no wall, a natural sill.

    The valley floor upstream of the outlet is lowered under the outlet's level, so the lake
    is the part of the valley below that level and its outlet is plain ground.
    """
    rng = canvas.rng
    level = float(valley.level(s_outlet))
    basin = float(rng.uniform(5.0, 25.0))
    upstream = s_outlet - field.s
    bump = np.clip(upstream / max(length * 0.15, 1.0), 0.0, 1.0) * np.clip(
        (length - upstream) / max(length * 0.3, 1.0), 0.0, 1.0
    )
    # Above the lake the floor climbs back to the river's own level over a short rapid.
    ramp = np.clip((upstream - length) / max(length * 0.3, 10.0), 0.0, 1.0)
    above = np.float32(valley.level(field.s)) - level
    drop = np.where(upstream > 0, np.maximum(above * (1.0 - ramp) + basin * bump, 0.0), 0.0)
    # The basin fades out up the valley walls, so it never reaches a neighbouring valley.
    drop *= np.exp(-((field.distance / (2.5 * valley.half_width)) ** 2))
    canvas.terrain = (canvas.terrain - drop).astype(np.float32)
    candidate = (canvas.terrain < level) & (upstream > 0) & (upstream < length)
    if domain is not None:
        candidate &= domain
    rows, cols = np.nonzero(candidate & (field.distance < 2) & (upstream < length * 0.5))
    lake = component_at(
        candidate, [(int(r), int(c)) for r, c in zip(rows[:50], cols[:50], strict=True)]
    )
    _drawdown_ring(canvas, lake, upstream > 0, level, rng)
    canvas.add_water(lake, level)
    return lake
