"""One canvas of several valleys with dams, bridges, natural lakes and levees among land cover.

The planet composes each of its tiles with :func:`compose_scene` (:mod:`.world`). Rivers share
one regional flow direction and base level so that their valleys meet in ridges rather than
cliffs.

Counts (the ``options`` mapping):
    dams (3), bridges (3), lakes (2) natural lakes with outlets, levees (2) stretches of
    embankment along a bank, rivers (enough to hold the features, at least 2), towns (0.4
    expected per 250 x 250 px), roads (4); and the small works built last, on open land or
    across a river (0 unless asked for): farm_ponds (farm-pond dams), weirs (low weirs across
    rivers), quarries and tailings (look-alikes). The planet (:mod:`.world`) fills them per
    tile from its density; clouds and voids belong to the light (:func:`.world.tile_image`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dam_detection.image_sources.simulated import landcover
from dam_detection.image_sources.simulated.canvas import Canvas
from dam_detection.image_sources.simulated.dams import DamTruth, draw_dam
from dam_detection.image_sources.simulated.farm_ponds import draw_farm_pond
from dam_detection.image_sources.simulated.mines import (
    QUARRY,
    TAILINGS,
    draw_quarry,
    draw_tailings_pond,
)
from dam_detection.image_sources.simulated.negatives import carve_lake, draw_bridge, draw_levee
from dam_detection.image_sources.simulated.noise import smooth_noise
from dam_detection.image_sources.simulated.rivers import (
    Valley,
    draw_river,
    meander_path,
    river_field,
    sample_valley,
    valley_terrain,
)
from dam_detection.image_sources.simulated.shapes import point_at

DEFAULT_OPTIONS: dict[str, float] = {
    "dams": 3,
    "bridges": 3,
    "lakes": 2,
    "levees": 2,
    "rivers": 0,
    "towns": 0.4,
    "roads": 4,
    "farm_ponds": 0,
    "weirs": 0,
    "quarries": 0,
    "tailings": 0,
}


@dataclass(frozen=True)
class QuietBorder:
    """How a tile of the planet meets its neighbours (see :mod:`.world`).

    Attributes:
        weight: 1 in the interior, falling smoothly to 0 at the canvas edge: valleys blend
            into ``base`` and rivers narrow to nothing where it falls.
        base: The planet's own terrain (a function of place), which both tiles of an edge
            share, so terrain is continuous across it.
        margin_px: Dams, lakes, bridges and levees stay this far inside the edge, so that what
            they change (a reservoir, a lake) stays inside the tile.
    """

    weight: np.ndarray
    base: np.ndarray
    margin_px: int


@dataclass
class SceneLayout:
    """A composed scene: its canvas and what was placed where (pixel coordinates).

    ``lookalikes`` holds ``(kind, x, y)`` of what is not a dam but looks like one: ``levee``
    (the middle of a stretch), ``lake_outlet``, ``quarry``, ``tailings``.
    """

    canvas: Canvas
    dams: list[DamTruth] = field(default_factory=list)
    bridges: list[tuple[float, float]] = field(default_factory=list)
    lakes: list[np.ndarray] = field(default_factory=list)
    lookalikes: list[tuple[str, float, float]] = field(default_factory=list)


def scene_options(options: Mapping[str, Any]) -> dict[str, float]:
    """Defaults merged with ``options``; unknown keys raise ``ValueError`` naming the valid ones."""
    unknown = sorted(set(options) - set(DEFAULT_OPTIONS))
    if unknown:
        raise ValueError(f"unknown scene options {unknown}; valid: {sorted(DEFAULT_OPTIONS)}")
    return {**DEFAULT_OPTIONS, **{key: float(value) for key, value in options.items()}}


def compose_scene(
    shape: tuple[int, int],
    rng: np.random.Generator,
    options: Mapping,
    border: QuietBorder | None = None,
    works_rng: np.random.Generator | None = None,
) -> SceneLayout:
    """Compose a scene canvas of ``shape`` with the features counted in ``options``.

    With a ``border`` the canvas is a tile of the planet: its edges hold the planet's base
    terrain and no water, so neighbouring tiles meet without steps or cut rivers. The small
    works (farm ponds, weirs, quarries, tailings) draw from ``works_rng`` (default: ``rng``),
    so that adding them leaves everything composed before them as it was.
    """
    opts = scene_options(options)
    rows, cols = shape
    canvas = Canvas.empty(shape, rng)
    counts = {kind: int(opts[kind]) for kind in ("dams", "bridges", "lakes", "levees")}
    n_rivers = max(int(opts["rivers"]), 2, int(np.ceil(sum(counts.values()) / 3)))
    flow = float(rng.uniform(0, 2 * np.pi))
    direction = np.array([np.cos(flow), np.sin(flow)])
    across = np.array([-direction[1], direction[0]])
    centre = np.array([cols / 2.0, rows / 2.0])
    # Rivers run in parallel bands across the flow direction, one band each.
    extent = abs(across[0]) * cols + abs(across[1]) * rows
    spacing = extent / n_rivers
    reach = float(np.hypot(rows, cols)) / 2.0 + 150.0
    base_level = float(rng.uniform(200, 1200))
    if border is not None:
        # Valley uplands near the planet's own terrain, so the blend at the edge is gentle.
        base_level = float(np.median(border.base)) - 60.0
    slope = float(rng.uniform(0.02, 0.08))
    hills = smooth_noise(rng, shape, 60.0, octaves=3)
    rivers = []
    for index in range(n_rivers):
        offset = (index + 0.5) * spacing - extent / 2.0 + rng.uniform(-0.15, 0.15) * spacing
        anchor = centre + across * offset
        path, s_mid = meander_path(
            rng, anchor, flow, reach, reach, wiggle=float(rng.uniform(0.15, 0.35))
        )
        drawn = sample_valley(rng, "mountain" if rng.random() < 0.6 else "lowland")
        valley = Valley(
            level_at_origin=base_level + slope * s_mid + rng.uniform(-5, 5),
            slope=slope * rng.uniform(0.9, 1.1),
            depth=max(drawn.depth, 45.0),
            half_width=min(drawn.half_width, spacing / 5.0),
            river_width=drawn.river_width,
            roughness=drawn.roughness,
        )
        rivers.append((path, river_field(shape, path), valley))
    owner, canvas.terrain = _nearest_river_and_lowest_valley(rivers, hills)
    margin = 60
    narrowing = np.ones(shape, np.float32)
    interior = None
    if border is not None:
        canvas.terrain = (
            border.weight * canvas.terrain + (1.0 - border.weight) * border.base
        ).astype(np.float32)
        margin = border.margin_px
        narrowing = border.weight
        interior = border.weight >= 1.0

    # Features go to rivers in turn, spaced along the visible part of each river.
    plan: list[list[str]] = [[] for _ in rivers]
    order = ["dams"] * counts["dams"] + ["lakes"] * counts["lakes"]
    order += ["bridges"] * counts["bridges"] + ["levees"] * counts["levees"]
    for k, kind in enumerate(order):
        plan[k % n_rivers].append(kind)
    placements = []
    for index, ((path, _, _), kinds) in enumerate(zip(rivers, plan, strict=True)):
        span = _visible_span(path, shape, margin=margin)
        rng.shuffle(kinds)
        if span is None:  # the river misses the interior: its features are not built
            continue
        s_in, s_out = span
        for slot, kind in enumerate(kinds):
            fraction = (slot + 0.5 + rng.uniform(-0.2, 0.2)) / len(kinds)
            placements.append((kind, index, s_in + fraction * (s_out - s_in)))
    layout = SceneLayout(canvas)
    for kind, index, s in placements:
        if kind == "lakes":
            path, fld, valley = rivers[index]
            length = float(rng.uniform(100, 300))
            domain = owner == index if interior is None else (owner == index) & interior
            layout.lakes.append(carve_lake(canvas, fld, valley, s, length, domain))
            outlet, _ = point_at(path, s)
            layout.lookalikes.append(("lake_outlet", float(outlet[0]), float(outlet[1])))
    if border is not None:
        # Lakes lowered the valley floors: meet the planet's base terrain at the edges again.
        canvas.terrain = (
            border.weight * canvas.terrain + (1.0 - border.weight) * border.base
        ).astype(np.float32)
    for index, (_, fld, valley) in enumerate(rivers):
        # Rivers narrow to a thread towards a tile edge instead of ending in a cut.
        within = fld.distance <= valley.river_width / 2.0 * narrowing
        draw_river(canvas, fld, valley, keep=(owner == index) & ~canvas.is_water() & within)
    biome = landcover.sample_biome(rng)
    landcover.paint_land_cover(canvas, biome)
    for kind, index, s in placements:
        path, fld, valley = rivers[index]
        if kind == "dams":
            layout.dams.append(draw_dam(canvas, path, fld, valley, s, owner == index, interior))
        elif kind == "bridges":
            layout.bridges.append(draw_bridge(canvas, path, valley, s))
        elif kind == "levees":
            stretch = (np.abs(fld.s - s) < rng.uniform(60, 200)) & (owner == index)
            levee = draw_levee(canvas, path, fld, valley, float(rng.choice([-1.0, 1.0])), stretch)
            if levee.any():
                rows_at, cols_at = np.nonzero(levee)
                middle = len(rows_at) // 2
                layout.lookalikes.append(
                    ("levee", float(cols_at[middle]) + 0.5, float(rows_at[middle]) + 0.5)
                )
    # A bridge or levee that a reservoir built after it drowned is no longer there to see.
    layout.bridges = [bridge for bridge in layout.bridges if _wall_standing(canvas, bridge)]
    layout.lookalikes = [
        (kind, x, y)
        for kind, x, y in layout.lookalikes
        if kind != "levee" or _wall_standing(canvas, (x, y))
    ]
    landcover.add_towns(canvas, float(opts["towns"]))
    landcover.add_roads(canvas, int(opts["roads"]))
    # A dam drowned by the reservoir of the next dam downstream is no longer a dam to find.
    layout.dams = [dam for dam in layout.dams if _wall_standing(canvas, dam.wall_centre)]
    _build_small_works(layout, rivers, owner, opts, works_rng or rng, margin, interior)
    return layout


def _nearest_river_and_lowest_valley(
    rivers: list, hills: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel, the index of the nearest river (the first on a tie, as ``argmin``) and the
    lowest of the rivers' valley terrains: running minima, not a stack of every river's
    canvas-sized fields.
    """
    _, first, valley = rivers[0]
    nearest = first.distance.copy()
    owner = np.zeros(nearest.shape, np.intp)
    terrain = valley_terrain(first, valley, hills)
    for index, (_, river, valley) in enumerate(rivers[1:], start=1):
        closer = river.distance < nearest
        owner[closer] = index
        np.minimum(nearest, river.distance, out=nearest)
        np.minimum(terrain, valley_terrain(river, valley, hills), out=terrain)
    return owner, terrain  # float32, as valley_terrain returns it


def _build_small_works(
    layout: SceneLayout,
    rivers: list,
    owner: np.ndarray,
    opts: Mapping[str, float],
    rng: np.random.Generator,
    margin: int,
    interior: np.ndarray | None,
) -> None:
    """Weirs across rivers, farm-pond dams, quarries and tailings ponds, in that order."""
    canvas = layout.canvas
    for _ in range(int(opts["weirs"])):
        index = int(rng.integers(len(rivers)))
        path, fld, valley = rivers[index]
        span = _visible_span(path, canvas.shape, margin=margin)
        if span is None:
            continue
        s = float(rng.uniform(*span))
        point, _ = point_at(path, s)
        col, row = int(point[0]), int(point[1])
        # Only on open river: not in a lake or reservoir, not beside another structure.
        near = (slice(max(row - 30, 0), row + 31), slice(max(col - 30, 0), col + 31))
        if canvas.notes.get("impounded", np.zeros(canvas.shape, bool))[near].any():
            continue
        if (canvas.structure[near] > 0).any() or any(lake[row, col] for lake in layout.lakes):
            continue
        weir = draw_dam(canvas, path, fld, valley, s, owner == index, interior, "weir", rng)
        if _wall_standing(canvas, weir.wall_centre):
            layout.dams.append(weir)
    for _ in range(int(opts["farm_ponds"])):
        pond = draw_farm_pond(canvas, rng, margin, interior)
        if pond is not None:
            layout.dams.append(pond)
    for kind, draw, count in ((QUARRY, draw_quarry, opts["quarries"]),
                              (TAILINGS, draw_tailings_pond, opts["tailings"])):  # fmt: skip
        for _ in range(int(count)):
            site = draw(canvas, rng, margin, interior)
            if site is not None:
                layout.lookalikes.append((kind, site[0], site[1]))


def _wall_standing(canvas: Canvas, centre: tuple[float, float]) -> bool:
    col, row = int(centre[0]), int(centre[1])
    rows, cols = canvas.shape
    window = (
        slice(max(row - 2, 0), min(row + 3, rows)),
        slice(max(col - 2, 0), min(col + 3, cols)),
    )
    return bool((canvas.structure[window] > 0).any())


def _visible_span(
    path: np.ndarray, shape: tuple[int, int], margin: int
) -> tuple[float, float] | None:
    rows, cols = shape
    seg = np.diff(path, axis=0)
    s = np.concatenate(([0.0], np.cumsum(np.hypot(seg[:, 0], seg[:, 1]))))
    inside = (
        (path[:, 0] > margin)
        & (path[:, 0] < cols - margin)
        & (path[:, 1] > margin)
        & (path[:, 1] < rows - margin)
    )
    if not inside.any():
        return None
    return float(s[inside].min()), float(s[inside].max())


__all__ = [
    "DEFAULT_OPTIONS",
    "QuietBorder",
    "SceneLayout",
    "compose_scene",
    "point_at",
    "scene_options",
]
