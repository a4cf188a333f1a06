"""What to draw around one point: a dam, a bridge, a water edge or random land at the centre.

Every patch is its own small world, seeded from the export seed and the point's location, so a
point renders the same bytes wherever and whenever it is exported. The centre pixel of the
canvas is the point: for kind ``dam`` it lies on the wall, for ``bridge`` on the deck, for
``water_edge`` on the shore.
"""

from __future__ import annotations

import numpy as np

from dam_detection.image_sources.simulated import landcover
from dam_detection.image_sources.simulated.canvas import Canvas
from dam_detection.image_sources.simulated.dams import draw_dam
from dam_detection.image_sources.simulated.negatives import (
    carve_lake,
    draw_bridge,
    draw_jetty,
    draw_levee,
    draw_shore,
    shore_field,
)
from dam_detection.image_sources.simulated.noise import smooth_noise
from dam_detection.image_sources.simulated.rivers import (
    RiverField,
    Valley,
    draw_river,
    meander_path,
    river_field,
    sample_valley,
    valley_terrain,
)

#: Kinds the renderer knows; anything else is drawn as random land.
KNOWN_KINDS: tuple[str, ...] = ("dam", "bridge", "water_edge", "random")
#: Water-edge variants and their shares.
WATER_EDGE_VARIANTS: dict[str, float] = {
    "lake_shore": 0.3,
    "river_bank": 0.2,
    "levee": 0.15,
    "coast": 0.15,
    "lake_outlet": 0.2,
}


def _river_canvas(
    canvas: Canvas, anchor: np.ndarray, heading: float, valley_kind: str, straight: float
) -> tuple[np.ndarray, RiverField, Valley, float]:
    """Valley terrain and river through ``anchor``; returns (centreline, field, valley, s)."""
    rng = canvas.rng
    valley = sample_valley(rng, valley_kind)
    reach = float(max(canvas.shape) * 1.5 + 100)
    centreline, s_anchor = meander_path(
        rng,
        anchor,
        heading,
        reach,
        reach,
        wiggle=float(rng.uniform(0.2, 0.7)),
        straight_near_anchor=straight,
    )
    field = river_field(canvas.shape, centreline)
    hills = smooth_noise(rng, canvas.shape, 50.0, octaves=3)
    canvas.terrain = valley_terrain(field, valley, hills)
    draw_river(canvas, field, valley)
    return centreline, field, valley, s_anchor


def compose_patch(
    kind: str, size: int, rng: np.random.Generator, shore_facing: float | None = None
) -> tuple[Canvas, str]:
    """Build the canvas of one patch of ``size`` x ``size`` pixels.

    Args:
        kind: ``dam``, ``bridge``, ``water_edge`` or ``random``.
        size: Pixels across (odd; the point is the centre pixel).
        rng: The patch's generator.
        shore_facing: For water edges, the direction (radians, 0 = east, pi/2 = south) from
            water to land at the centre, when the water-occurrence field knows it.

    Returns:
        ``(canvas, variant)``: what was drawn, and which variant of the kind.
    """
    canvas = Canvas.empty((size, size), rng)
    centre = np.array([size / 2.0, size / 2.0])
    heading = float(rng.uniform(0, 2 * np.pi))
    biome = landcover.sample_biome(rng)
    variant = kind
    if kind == "dam":
        centreline, field, valley, s_anchor = _river_canvas(
            canvas, centre, heading, "mountain" if rng.random() < 0.75 else "lowland", 40.0
        )
        landcover.paint_land_cover(canvas, biome)
        truth = draw_dam(canvas, centreline, field, valley, s_anchor)
        variant = f"dam_{truth.material}"
    elif kind == "bridge":
        centreline, field, valley, s_anchor = _river_canvas(
            canvas, centre, heading, "lowland" if rng.random() < 0.7 else "mountain", 30.0
        )
        if rng.random() < 0.25:
            draw_levee(canvas, centreline, field, valley, float(rng.choice([-1.0, 1.0])))
        landcover.paint_land_cover(canvas, biome)
        draw_bridge(canvas, centreline, valley, s_anchor)
    elif kind == "water_edge":
        names = list(WATER_EDGE_VARIANTS)
        shares = np.array(list(WATER_EDGE_VARIANTS.values()))
        variant = str(rng.choice(names, p=shares / shares.sum()))
        _draw_water_edge(canvas, variant, centre, heading, shore_facing, biome)
    else:
        variant = _draw_random_land(canvas, centre, heading, biome)
    landcover.add_towns(canvas, biome.towns)
    landcover.add_roads(canvas, int(rng.integers(0, 3)))
    return canvas, variant


def _draw_water_edge(
    canvas: Canvas,
    variant: str,
    centre: np.ndarray,
    heading: float,
    facing_angle: float | None,
    biome: landcover.Biome,
) -> None:
    rng = canvas.rng
    facing = heading if facing_angle is None else facing_angle
    land_dir = np.array([np.cos(facing), np.sin(facing)])
    if variant in ("lake_shore", "coast"):
        coast = variant == "coast"
        level = 0.0 if coast else float(rng.uniform(50, 1500))
        canvas.terrain = landcover.hills(rng, canvas.shape, level + 10.0, rng.uniform(3, 25))
        shore = shore_field(canvas, centre, land_dir, rng.uniform(5, 40), rng.uniform(40, 150))
        draw_shore(canvas, shore, level, float(rng.uniform(0.1, 0.8)), coast)
        landcover.paint_land_cover(canvas, biome)
        if coast and rng.random() < 0.3:
            normal = np.array([-land_dir[1], land_dir[0]])
            start = centre + normal * rng.uniform(30, 90) * rng.choice([-1, 1])
            draw_jetty(canvas, start, -land_dir, level)
    elif variant in ("river_bank", "levee"):
        # The river runs across ``land_dir`` with its bank (or levee) through the centre.
        valley = sample_valley(rng, "lowland" if rng.random() < 0.7 else "mountain")
        offset = valley.river_width / 2.0 + (2.0 if variant == "levee" else 0.0)
        anchor = centre - land_dir * offset
        flow = np.arctan2(land_dir[0], -land_dir[1]) + (np.pi if rng.random() < 0.5 else 0.0)
        centreline, s_anchor = meander_path(
            rng, anchor, float(flow), 700, 700, wiggle=0.3, straight_near_anchor=60.0
        )
        field = river_field(canvas.shape, centreline)
        canvas.terrain = valley_terrain(
            field, valley, smooth_noise(rng, canvas.shape, 50.0, octaves=3)
        )
        draw_river(canvas, field, valley)
        if variant == "levee":
            side_at_centre = field.side[int(centre[1]), int(centre[0])]
            draw_levee(canvas, centreline, field, valley, float(side_at_centre))
        landcover.paint_land_cover(canvas, biome)
    else:  # lake_outlet: a natural lake drains into the river at the centre
        centreline, field, valley, s_anchor = _river_canvas(
            canvas, centre, heading, "mountain" if rng.random() < 0.6 else "lowland", 40.0
        )
        carve_lake(canvas, field, valley, s_anchor, float(rng.uniform(120, 500)))
        landcover.paint_land_cover(canvas, biome)


def _draw_random_land(
    canvas: Canvas, centre: np.ndarray, heading: float, biome: landcover.Biome
) -> str:
    rng = canvas.rng
    roll = rng.random()
    if roll < 0.3:  # a river somewhere, not at the centre
        # At most half a patch from the centre, so the river always crosses the canvas.
        offset = rng.uniform(15, canvas.shape[0] / 2)
        anchor = centre + offset * np.array([np.cos(heading + 1.6), np.sin(heading + 1.6)])
        _river_canvas(canvas, anchor, heading, "any", 0.0)
        variant = "random_river"
    elif roll < 0.4:  # a lake somewhere
        canvas.terrain = landcover.hills(rng, canvas.shape, rng.uniform(50, 1500), 15.0)
        land_dir = np.array([np.cos(heading), np.sin(heading)])
        shore_at = centre - land_dir * rng.uniform(20, canvas.shape[0])
        level = float(canvas.terrain.mean())
        draw_shore(canvas, shore_field(canvas, shore_at, land_dir, 20, 80), level, 0.3, False)
        variant = "random_lake"
    else:
        canvas.terrain = landcover.hills(
            rng, canvas.shape, rng.uniform(0, 2500), rng.uniform(2, 120)
        )
        variant = "random_land"
    landcover.paint_land_cover(canvas, biome)
    return variant
