"""Regions cut into scan tiles: every place in exactly one core, stable ids, polygon files."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from pyproj import Transformer

from dam_detection.pipelines.scan.region import build_scan_region
from dam_detection.pipelines.scan.settings import RegionSettings
from dam_detection.pipelines.scan.tiling import plan_tiles, tiles_frame, tiles_from_frame

BOX = shapely.box(-109.62, 37.40, -109.57, 37.43)


def test_cores_cover_the_region_once_and_ids_are_stable():
    tiles = plan_tiles(BOX, "mesa", 256, 16)
    assert tiles == plan_tiles(BOX, "mesa", 256, 16)
    assert {t.epsg for t in tiles} == {32612}
    cores = [shapely.box(*t.core_bounds()) for t in tiles]
    to_grid = Transformer.from_crs("EPSG:4326", "EPSG:32612", always_xy=True)
    rng = np.random.default_rng(0)
    lon, lat = rng.uniform(-109.62, -109.57, 500), rng.uniform(37.40, 37.43, 500)
    x, y = to_grid.transform(lon, lat)
    inside = np.array([[shapely.contains_xy(core, x, y)] for core in cores]).reshape(len(cores), -1)
    assert (inside.sum(axis=0) == 1).all()  # each place in exactly one core
    assert all(t.window_px == 256 + 32 for t in tiles)
    assert len({t.tile_id for t in tiles}) == len(tiles)


def test_tiles_outside_a_polygon_are_not_scanned():
    # An L: the box without its north-east quarter.
    notch = shapely.box(-109.595, 37.415, -109.57, 37.43)
    l_shape = BOX.difference(notch)
    full, cut = plan_tiles(BOX, "r", 128, 0), plan_tiles(l_shape, "r", 128, 0)
    assert set(cut) < set(full)
    assert len(cut) < len(full)


def test_tiles_round_trip_through_their_table():
    tiles = plan_tiles(BOX, "mesa", 512, 8)
    frame = tiles_frame(tiles)
    assert frame.crs == "EPSG:4326"
    assert tiles_from_frame(frame) == tiles
    assert frame.geometry.union_all().contains(BOX.centroid)


def test_region_from_a_polygon_file(tmp_path):
    path = tmp_path / "basin.gpkg"
    polygons = gpd.GeoDataFrame(
        {"name": ["a", "b"]},
        geometry=[shapely.box(0, 0, 1000, 1000), shapely.box(1000, 0, 2000, 500)],
        crs="EPSG:32612",
    )
    polygons.to_file(path, driver="GPKG")
    region = build_scan_region(RegionSettings(name="basin", bbox=None, file=str(path)))
    assert region.crs == "EPSG:4326" and len(region) == 1
    assert region.to_crs(32612).area.iloc[0] == pytest.approx(1.5e6, rel=1e-3)


def test_a_region_file_without_polygons_is_refused_by_name(tmp_path):
    path = tmp_path / "points.geojson"
    gpd.GeoDataFrame(geometry=gpd.points_from_xy([0], [0]), crs=4326).to_file(path)
    with pytest.raises(ValueError, match="points.geojson.*holds no polygon"):
        build_scan_region(RegionSettings(name="x", bbox=None, file=str(path)))


def test_region_needs_exactly_one_of_bbox_and_file():
    with pytest.raises(ValueError, match="exactly one of bbox and file"):
        RegionSettings(name="x", bbox=[0, 0, 1, 1], file="a.gpkg")
    with pytest.raises(ValueError, match="west, south, east, north"):
        RegionSettings(name="x", bbox=[1, 0, 0, 1], file=None)
