"""The planet's kinds of dam (across valleys, farm ponds, weirs) and its look-alikes (quarries,
tailings ponds, levees, lake outlets): each built as described, recorded in the truth, kept by
the tile cache, and added without changing the rest of the world."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage

from dam_detection.image_sources.simulated import canvas as cv
from dam_detection.image_sources.simulated.world import (
    Density,
    Planet,
    TileKey,
    compose_tile,
    tile_features,
)

#: Crowded with small works, so that every kind turns up in a few small tiles.
WORKS = Density(farm_ponds=80.0, weirs=40.0, quarries=15.0, tailings=15.0)
KEYS = [TileKey(32612, 120 + i, 820) for i in range(3)]


def _layouts(planet: Planet) -> list:
    return [compose_tile(planet, key) for key in KEYS]


def test_every_kind_is_built_as_described() -> None:
    layouts = _layouts(Planet(seed=4, tile_px=512, density=WORKS))
    dams = [(layout, dam) for layout in layouts for dam in layout.dams]
    kinds = {dam.kind for _, dam in dams}
    assert kinds == {"reservoir", "farm_pond", "weir"}
    lookalikes = {kind for layout in layouts for kind, _, _ in layout.lookalikes}
    assert {"quarry", "tailings", "levee"} <= lookalikes
    for layout, dam in dams:
        canvas = layout.canvas
        col, row = int(dam.wall_centre[0]), int(dam.wall_centre[1])
        near = (slice(row - 3, row + 4), slice(col - 3, col + 4))
        assert (canvas.structure[near] > 0).any(), dam.kind  # a wall stands at the point
        level = float(np.nanmax(canvas.water[dam.reservoir]))
        # The water stands below the wall's crest beside it, flat.
        touching = ndimage.binary_dilation(dam.reservoir, iterations=2) & (canvas.structure > 0)
        crest = (canvas.terrain + canvas.structure)[touching]
        assert level - float(np.nanmin(canvas.water[dam.reservoir])) < 1e-3
        if dam.kind == "farm_pond":
            # A pond of a few hectares at most, held by an earth bank a few pixels wide.
            assert 6 <= dam.reservoir.sum() <= 400 and dam.material == "earth"
            assert crest.max() > level
        if dam.kind == "weir":
            # A low concrete sill: a few metres above the water below it.
            assert dam.material == "concrete" and dam.crest_length_px < 60
    for layout in layouts:
        canvas = layout.canvas
        for kind, x, y in layout.lookalikes:
            col, row = int(x), int(y)
            if kind == "quarry":  # bare rock cut below the land around it
                assert canvas.cover[row, col] in (cv.ROCK, cv.WATER)
            if kind == "tailings":  # water or beach inside, an embankment around
                assert canvas.cover[row, col] in (cv.WATER, cv.SAND, cv.WET_SHORE)


def test_the_small_works_leave_the_valleys_as_they_were() -> None:
    plain = Planet(seed=4, tile_px=512, density=Density(farm_ponds=0, weirs=0, quarries=0,
                                                         tailings=0))  # fmt: skip
    works = Planet(seed=4, tile_px=512, density=WORKS)
    for key in KEYS:
        before = [d for d in tile_features(plain, key).dams]
        after = [d for d in tile_features(works, key).dams if d.kind == "reservoir"]
        # The same dams across valleys, with the same ids: published ids and samples hold.
        assert [(d.dam_id, d.x, d.y) for d in before] == [(d.dam_id, d.x, d.y) for d in after]
        np.testing.assert_array_equal(tile_features(plain, key).bridges,
                                      tile_features(works, key).bridges)  # fmt: skip


def test_the_tile_cache_keeps_kinds_and_lookalikes(tmp_path) -> None:
    fresh = Planet(seed=4, tile_px=512, density=WORKS)
    cached = Planet(seed=4, tile_px=512, density=WORKS, cache_dir=str(tmp_path))
    compose_tile.cache_clear()
    first = compose_tile(cached, KEYS[0])  # composed and stored
    compose_tile.cache_clear()
    stored = compose_tile(cached, KEYS[0])  # read back
    compose_tile.cache_clear()
    for layout in (first, stored):
        assert [d.kind for d in layout.dams] == [d.kind for d in compose_tile(fresh, KEYS[0]).dams]
        assert layout.lookalikes == compose_tile(fresh, KEYS[0]).lookalikes


def test_only_a_dam_holds_a_lake() -> None:
    """A bridge deck in a reservoir's way drowns instead of holding the lake back: a deck with
    water standing metres higher on one side is a dam the truth does not list (before this
    rule, 11 of these 23 bridges were such dams)."""
    planet = Planet(seed=7, tile_px=512, density=Density(dams=40.0, bridges=40.0))
    bridges = stepped = 0
    for layout in _layouts(planet):
        canvas = layout.canvas
        for x, y in layout.bridges:
            col, row = int(x), int(y)
            near = (slice(max(row - 6, 0), row + 7), slice(max(col - 6, 0), col + 7))
            assert (canvas.structure[near] > 0).any()  # every listed bridge still stands
            levels = canvas.water[near][canvas.is_water()[near]]
            bridges += 1
            stepped += bool(levels.size) and float(levels.max() - levels.min()) > 3.0
    assert bridges >= 10
    # Two lakes that meet (a reservoir against a natural lake's shore) may still differ in
    # level beside a deck; a deck holding a reservoir back was every other bridge.
    assert stepped <= 0.1 * bridges


def test_a_lake_reaching_past_its_valley_spills_sideways() -> None:
    from dam_detection.image_sources.simulated.dams import _spills_sideways

    lake = np.zeros((8, 8), bool)
    lake[2:6, 2:5] = True
    valley = np.ones((8, 8), bool)
    valley[:, 5:] = False  # the next valley begins right of the lake's shore
    low = np.ones((8, 8), bool)  # ground under the lake's level everywhere
    assert _spills_sideways(lake, valley, low)
    high = low.copy()
    high[:, 5:] = False  # a ridge above the lake's level along the valley's edge
    assert not _spills_sideways(lake, valley, high)
    assert not _spills_sideways(np.zeros((8, 8), bool), valley, low)


def _compose_when_all_are_ready(planet: Planet, barrier, log: str) -> None:
    from dam_detection.image_sources.simulated import world

    compose = world._compose

    def counted(*args):
        with open(log, "a") as out:
            out.write("composed\n")
        return compose(*args)

    world._compose = counted
    barrier.wait()
    compose_tile(planet, KEYS[0])


def test_processes_wanting_the_same_tile_compose_it_once(tmp_path) -> None:
    """The scan's workers meet at shared planet tiles: one composes a missing tile, the
    others wait for it and read what it saved (before the lock, each composed its own)."""
    import multiprocessing

    planet = Planet(seed=4, tile_px=512, cache_dir=str(tmp_path / "tiles"))
    log = str(tmp_path / "composed.txt")
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(3)
    compose_tile.cache_clear()  # the children must not inherit this process's copy
    workers = [
        context.Process(target=_compose_when_all_are_ready, args=(planet, barrier, log))
        for _ in range(3)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [worker.exitcode for worker in workers] == [0, 0, 0]
    assert Path(log).read_text().count("composed") == 1
    compose_tile.cache_clear()
    fresh = Planet(seed=4, tile_px=512)
    np.testing.assert_array_equal(compose_tile(planet, KEYS[0]).canvas.terrain,
                                  compose_tile(fresh, KEYS[0]).canvas.terrain)  # fmt: skip


def test_a_scan_composes_ahead_exactly_the_tiles_its_blocks_read(tmp_path) -> None:
    """The scan composes the planet tiles its windows need on the rendering pool before its
    workers start: those tiles and no others, once, with the pixels unchanged."""
    from dam_detection.image_sources.simulated import tile_cache
    from dam_detection.image_sources.simulated.region import PlanetBlockReader

    planet = Planet(seed=4, tile_px=512, cache_dir=str(tmp_path / "tiles"))
    reader = PlanetBlockReader(planet, 7, ("B3", "NDWI"))
    # a 30 px window across the corner of four tiles: (120, 820), its east and south neighbours
    first_col, top_north, side = 120 * 512 + 500, 820 * 512 + 10, 30
    compose_tile.cache_clear()
    assert reader.compose_ahead(32612, [(first_col, top_north, side)], workers=1) == 4
    held = {(ix, iy) for ix in range(118, 124) for iy in range(817, 823)
            if tile_cache.holds(planet, TileKey(32612, ix, iy))}  # fmt: skip
    assert held == {(120, 820), (121, 820), (120, 819), (121, 819)}
    assert reader.compose_ahead(32612, [(first_col, top_north, side)], workers=1) == 0
    fresh = PlanetBlockReader(Planet(seed=4, tile_px=512), 7, ("B3", "NDWI"))
    assert fresh.compose_ahead(32612, [(first_col, top_north, side)], workers=1) == 0  # no cache
    np.testing.assert_array_equal(reader(32612, first_col, top_north, side, side),
                                  fresh(32612, first_col, top_north, side, side))  # fmt: skip
