"""One planet: patches, scenes and neighbouring scenes agree; tiles meet without seams.

Small tiles (256 px) keep these fast; the default run uses 1024 px tiles of the same world.
"""

from __future__ import annotations

import numpy as np
import pytest
from pyproj import Transformer

from dam_detection.image_sources.base import SceneRequest
from dam_detection.image_sources.simulated import SimulatedEarth
from dam_detection.image_sources.simulated.render import (
    PatchTask,
    patch_axes,
    patch_grid,
    render_patch,
)
from dam_detection.image_sources.simulated.scene_export import render_scene, scene_mixer
from dam_detection.image_sources.simulated.world import (
    Density,
    Planet,
    TileKey,
    compose_tile,
    render_tile_image,
    sample_lonlat,
    sample_lonlat_grid,
    tile_features,
    zone_epsg,
)
from tests.settings import composite_window

WINDOW = composite_window()
BANDS = ("B2", "B3", "B4", "NDWI", "AVE")
PLANET = Planet(seed=7, tile_px=256, missing_band_rate=0.0, cloud_rate=0.5, void_rate=0.5)


def _scene(lon: float, lat: float, size: int = 192) -> SceneRequest:
    return SceneRequest(
        name="s", center_lon=lon, center_lat=lat, composite=WINDOW, width_px=size,
        height_px=size, patch_dimensions=(64, 64), kernel_size=(0, 0), bands=BANDS,
    )  # fmt: skip


def _scene_pixels_at(scene: SceneRequest, lon: np.ndarray, lat: np.ndarray) -> dict:
    mixer = scene_mixer(scene)
    x, y = Transformer.from_crs("EPSG:4326", mixer.crs, always_xy=True).transform(lon, lat)
    _, _, left, _, _, top = mixer.to_json()["projection"]["affine"]["doubleMatrix"]
    col = np.floor((np.asarray(x) - left) / 10.0).astype(int)
    row = np.floor((top - np.asarray(y)) / 10.0).astype(int)
    images = render_scene(scene, PLANET)
    return {band: images[band][row, col] for band in BANDS}


@pytest.mark.parametrize("offset", [(0.0, 0.0), (0.004, -0.003), (-0.005, 0.004)])
def test_a_patch_and_the_scene_around_it_show_the_same_pixels(offset) -> None:
    # Patches sample Earth Engine's degree grid, scenes the UTM grid: every patch pixel is the
    # scene pixel that contains its centre (nearest neighbour), so they agree exactly; the
    # two grids' pixel centres are at most 7 m apart.
    scene = _scene(-110.35, 37.75)
    lon, lat = -110.35 + offset[0], 37.75 + offset[1]
    task = PatchTask(
        point_index=0, label=1.0, lon=lon, lat=lat, radius=24, bands=BANDS, label_key="label",
        month=WINDOW.middle_month, planet=PLANET,
    )  # fmt: skip
    patch = render_patch(task)
    grid_lon, grid_lat = patch_grid(lon, lat, 24)
    expected = _scene_pixels_at(scene, grid_lon, grid_lat)
    for band in BANDS:
        np.testing.assert_array_equal(patch[band], expected[band])


def test_overlapping_scenes_agree_pixel_for_pixel() -> None:
    west, east = _scene(-110.36, 37.75), _scene(-110.345, 37.75)
    west_mixer, east_mixer = scene_mixer(west), scene_mixer(east)
    shift = (east_mixer.to_json()["projection"]["affine"]["doubleMatrix"][2]
             - west_mixer.to_json()["projection"]["affine"]["doubleMatrix"][2])  # fmt: skip
    columns = int(round(shift / 10.0))
    assert 0 < columns < 192  # they overlap
    west_images, east_images = render_scene(west, PLANET), render_scene(east, PLANET)
    west_rows = west_mixer.to_json()["projection"]["affine"]["doubleMatrix"][5]
    east_rows = east_mixer.to_json()["projection"]["affine"]["doubleMatrix"][5]
    row_shift = int(round((west_rows - east_rows) / 10.0))
    rows = slice(max(row_shift, 0), 192 + min(row_shift, 0))
    rows_east = slice(max(-row_shift, 0), 192 + min(-row_shift, 0))
    for band in BANDS:
        np.testing.assert_array_equal(
            west_images[band][rows, columns:], east_images[band][rows_east, : 192 - columns]
        )


def test_neighbouring_tiles_meet_without_steps_or_cut_water() -> None:
    planet = Planet(seed=11, tile_px=256, density=Density(dams=40.0, lakes=20.0))
    for key in (TileKey(32612, 200, 1600), TileKey(32612, 201, 1600)):
        water = compose_tile(planet, key).canvas.is_water()
        edges = np.concatenate([water[0], water[-1], water[:, 0], water[:, -1]])
        assert not edges.any()  # rivers narrow to nothing before the edge
    left = compose_tile(planet, TileKey(32612, 200, 1600)).canvas.terrain[:, -1]
    right = compose_tile(planet, TileKey(32612, 201, 1600)).canvas.terrain[:, 0]
    # One pixel apart on the planet's base terrain: at most a few metres of slope.
    assert np.abs(left - right).max() < 5.0


def test_dams_hold_reservoirs_inside_their_tile_and_density_counts() -> None:
    sparse = Planet(seed=3, tile_px=512, density=Density(dams=5.0))
    dense = Planet(seed=3, tile_px=512, density=Density(dams=60.0))
    keys = [TileKey(32612, 100 + i, 800) for i in range(3)]
    count = {p: sum(len(tile_features(p, k).dams) for k in keys) for p in (sparse, dense)}
    assert count[dense] > 3 * max(count[sparse], 1)
    for key in keys:
        layout = compose_tile(dense, key)
        margin = dense.border_px
        for dam in layout.dams:
            assert dam.reservoir.any()
            inner = dam.reservoir[margin:-margin, margin:-margin]
            assert inner.sum() == dam.reservoir.sum()  # no lake is cut by the tile edge
            # The wall stands (none is drowned by the next reservoir) and its lake lies flat.
            col, row = int(dam.wall_centre[0]), int(dam.wall_centre[1])
            assert (layout.canvas.structure[row - 2 : row + 3, col - 2 : col + 3] > 0).any()
            levels = layout.canvas.water[dam.reservoir]
            assert np.nanmax(levels) - np.nanmin(levels) < 1e-3


def test_a_cached_tile_renders_the_same_pixels(tmp_path) -> None:
    cached = Planet(
        seed=7, tile_px=256, missing_band_rate=0.0, cloud_rate=0.5, void_rate=0.5,
        cache_dir=str(tmp_path),
    )  # fmt: skip
    key = TileKey(32612, 300, 1500)
    compose_tile.cache_clear()
    fresh = render_tile_image(PLANET, key, 7, BANDS)
    assert not list(tmp_path.rglob("*.npz"))
    compose_tile.cache_clear()
    render_tile_image(cached, key, 7, BANDS)  # composes and stores
    assert list(tmp_path.rglob("*.npz"))
    compose_tile.cache_clear()
    again = render_tile_image(cached, key, 7, BANDS)  # reads the stored tile
    for band in BANDS:
        np.testing.assert_array_equal(fresh.bands[band], again.bands[band])


def test_scene_truth_lists_the_planets_dams_in_the_scene() -> None:
    source = SimulatedEarth(seed=3, tile_px=512, density={"dams": 60.0})
    export = source.scene_export(_scene(-110.35, 37.75, size=512))
    walls = export.truth[export.truth["kind"] == "dam_wall"]
    assert len(walls) >= 3
    assert walls["dam_id"].is_unique
    again = source.scene_export(_scene(-110.349, 37.751, size=512)).truth
    shared = set(walls["dam_id"]) & set(again["dam_id"])
    assert shared  # the same dams, under the same ids, in an overlapping scene


@pytest.mark.parametrize(("lon", "lat"), [(-109.7, 37.4), (25.0, -33.9), (3.0, 0.0005)])
def test_a_patch_grid_in_one_zone_gives_the_per_pixel_lookup_exactly(lon, lat) -> None:
    # The fast path (one zone for the whole patch, one gather per band) must not change a
    # single pixel of what every pixel's own lookup gives; across the equator it falls back.
    lons, lats = patch_axes(lon, lat, 24)
    month = WINDOW.middle_month
    grid = sample_lonlat_grid(PLANET, month, BANDS, lons, lats)
    exact = sample_lonlat(PLANET, month, BANDS, *np.meshgrid(lons, lats))
    for band in BANDS:
        np.testing.assert_array_equal(grid.bands[band], exact.bands[band])
    np.testing.assert_array_equal(grid.optical_mask, exact.optical_mask)


def test_a_patch_grid_across_a_zone_edge_samples_each_zone() -> None:
    # 114 W is a UTM zone edge: each pixel comes from the tiles of its own zone, as the
    # exact per-pixel path gives it.
    lons, lats = patch_axes(-114.0, 37.4, 24)
    month = WINDOW.middle_month
    grid = sample_lonlat_grid(PLANET, month, BANDS, lons, lats)
    exact = sample_lonlat(PLANET, month, BANDS, *np.meshgrid(lons, lats))
    assert len(np.unique(zone_epsg(*np.meshgrid(lons, lats)))) == 2
    for band in BANDS:
        np.testing.assert_array_equal(grid.bands[band], exact.bands[band])
