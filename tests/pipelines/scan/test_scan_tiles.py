"""One tile in a worker: block prediction, seams, the heatmap VRT, water bodies, chips."""

from __future__ import annotations

import dataclasses
import io

import numpy as np
import pytest
import rasterio
from matplotlib.image import imread
from scipy import ndimage

from dam_detection.detection.views import averaged_over_views
from dam_detection.pipelines.scan.merge import merge_tile_detections
from dam_detection.pipelines.scan.store import TileStore
from dam_detection.pipelines.scan.tile_scan import (
    ListedPoints,
    chip_png,
    predict_array,
    predictor_for,
    scan_tile,
    water_bodies,
)
from dam_detection.pipelines.scan.tiling import ScanTile
from tests.pipelines.scan.helpers import BANDS, STATS, image, tile_job, tiny_fcn

#: A 128-pixel tile of the test planet's UTM zone and its four 64-pixel quarters.
COL, TOP = 57_344, 447_999
BIG = ScanTile("big", 32614, COL, TOP, 128, 12)
QUARTERS = [
    ScanTile(f"q{r}{c}", 32614, COL + 64 * c, TOP - 64 * r, 64, 12) for r in (0, 1) for c in (0, 1)
]


def test_blocks_give_the_heatmap_of_one_whole_prediction():
    model = tiny_fcn()
    halo = 7  # the tiny FCN's receptive field is 15 px
    picture = image((90 + 2 * halo, 77 + 2 * halo))
    predict = predictor_for(tile_job(model).model, threads=1)
    whole = predict_array(predict, picture, halo, 1000, STATS, BANDS)
    blocks = predict_array(predict, picture, halo, 32, STATS, BANDS)
    assert whole.shape == (90, 77) and whole.dtype == np.float16
    np.testing.assert_allclose(blocks.astype(np.float32), whole.astype(np.float32), atol=2e-3)
    # 3 x 3 blocks of 30 x 26 px (widths 26, 26, 25): equal neighbours go in batches of up to 2
    batched = predict_array(predict, picture, halo, 32, STATS, BANDS, blocks_per_batch=2)
    np.testing.assert_allclose(batched.astype(np.float32), whole.astype(np.float32), atol=2e-3)


def test_four_tiles_give_what_one_big_tile_gives(tmp_path):
    """No seam: the quarters' heatmaps tile the big one's, and their merged detections are the
    big tile's (each kept by the one tile whose core holds it)."""
    job = tile_job(tiny_fcn(), threshold=0.5)
    big_store, small_store = TileStore(tmp_path / "big"), TileStore(tmp_path / "small")
    scan_tile(BIG, ListedPoints(), big_store, job)
    for quarter in QUARTERS:
        scan_tile(quarter, ListedPoints(), small_store, job)
    small_store.write_vrt(QUARTERS)
    with (
        rasterio.open(big_store.heatmap_path("big")) as big,
        rasterio.open(small_store.vrt_path) as mosaic,
    ):
        assert mosaic.transform == big.transform and mosaic.crs == big.crs
        np.testing.assert_allclose(mosaic.read(1), big.read(1), atol=2e-3)
    one = merge_tile_detections([big_store.detections("big")], 32614, 4.0)
    four = merge_tile_detections([small_store.detections(q.tile_id) for q in QUARTERS], 32614, 4.0)
    assert len(one) > 5
    assert set(four["tile_id"]) == {q.tile_id for q in QUARTERS}
    # The same places and scores (ties in float16 scores may rank them in another order).
    one, four = (frame.sort_values(["x", "y"]) for frame in (one, four))
    np.testing.assert_allclose(four[["x", "y"]].to_numpy(), one[["x", "y"]].to_numpy(), atol=0.5)
    np.testing.assert_allclose(four["score"], one["score"], atol=2e-3)
    # Every detection has its chip.
    assert all(small_store.chip_path(i).exists() for i in four["detection_id"])


def test_a_tile_is_averaged_over_the_views_its_job_asks_for(tmp_path):
    job = tile_job(tiny_fcn(), block_px=64)
    eight = dataclasses.replace(job, views=8)
    stores = {views: TileStore(tmp_path / str(views)) for views in (1, 8)}
    scan_tile(BIG, ListedPoints(), stores[1], job)
    scan_tile(BIG, ListedPoints(), stores[8], eight)
    halo, window = job.halo, BIG.window_px
    picture = job.reader(BIG.epsg, BIG.window_col - halo, BIG.window_top + halo,
                         window + 2 * halo, window + 2 * halo)  # fmt: skip
    posed = averaged_over_views(predictor_for(job.model, threads=1), 8)
    expected = predict_array(posed, picture, halo, job.block_px, STATS, BANDS)
    o, size = BIG.overlap_px, BIG.size_px
    with (
        rasterio.open(stores[1].heatmap_path("big")) as one,
        rasterio.open(stores[8].heatmap_path("big")) as averaged,
    ):
        written = averaged.read(1)
        np.testing.assert_allclose(written, expected[o : o + size, o : o + size], atol=2e-3)
        assert np.abs(written - one.read(1)).max() > 0.01  # the untrained model is not symmetric


def test_a_thin_river_does_not_join_two_reservoirs():
    ndwi = np.full((60, 100), -0.5, np.float32)
    ndwi[20:40, 5:35] = 0.6  # reservoir A
    ndwi[20:40, 65:95] = 0.6  # reservoir B
    ndwi[29:31, 35:65] = 0.4  # a 2-pixel river between them
    labels = water_bodies(ndwi, 0.0)
    assert labels[30, 20] and labels[30, 80] and labels[30, 20] != labels[30, 80]
    ndwi[25:35, 35:65] = 0.6  # a 10-pixel channel: one water body
    labels = water_bodies(ndwi, 0.0)
    assert labels[30, 20] == labels[30, 80]
    assert ndimage.label(labels > 0)[1] == 1


def test_chip_shows_true_colour_heatmap_and_ndwi_side_by_side():
    picture = image((50, 50))
    heat = np.zeros((50, 50), np.float16)
    png = chip_png(picture, heat, BANDS, 2.0, 48.0, size=16, scale=2)  # near a corner: padded
    pixels = imread(io.BytesIO(png))
    assert pixels.shape[:2] == (32, (3 * 16 + 2 * 2) * 2)


@pytest.mark.parametrize("listed_on_lake", [True, False])
def test_a_listed_point_on_the_lake_beside_a_detection_is_reported(tmp_path, listed_on_lake):
    job = tile_job(tiny_fcn(), threshold=0.05)
    # A lake painted into the planet's pixels by a reader that wraps the real one.
    real = job.reader

    def lake_reader(epsg, col, top, width, height):
        block = real(epsg, col, top, width, height).copy()
        block[:, :, 3] = -0.5
        block[40:80, 40:80, 3] = 0.8
        return block

    from dataclasses import replace

    job = replace(job, reader=lake_reader)
    tile = ScanTile("lake", 32614, COL, TOP, 96, 12)
    # Window pixel (row, col) -> grid metres of its centre.
    left, top = (tile.window_col) * 10.0, (tile.window_top + 1) * 10.0
    row, col = (60, 60) if listed_on_lake else (5, 5)
    listed = ListedPoints(("nat:1",), (left + (col - 7 + 0.5) * 10,), (top - (row - 7 + 0.5) * 10,))
    scan_tile(tile, listed, TileStore(tmp_path), job)
    detections = TileStore(tmp_path).detections("lake")
    grid = [((top - d["y"]) / 10 - 0.5 + 7, (d["x"] - left) / 10 - 0.5 + 7) for d in detections]
    beside = [d for d, (r, c) in zip(detections, grid, strict=True)
              if 35 <= r <= 85 and 35 <= c <= 85 and not (45 < r < 75 and 45 < c < 75)]  # fmt: skip
    assert beside, "the tiny FCN left no peak near the lake shore"
    assert all(d["reservoir_ids"] == (["nat:1"] if listed_on_lake else []) for d in beside)


def test_a_peak_below_the_threshold_is_kept_only_beside_a_listed_dam(tmp_path):
    every = tile_job(tiny_fcn(), threshold=0.01)
    scan_tile(BIG, ListedPoints(), TileStore(tmp_path / "every"), every)
    peaks = TileStore(tmp_path / "every").detections("big")
    scores = sorted(d["score"] for d in peaks)
    threshold = scores[len(scores) // 2]  # half the tile's peaks are below it
    weak = [d for d in peaks if d["score"] < threshold]
    listed = ListedPoints(("nat:1",), (weak[0]["x"] + 20.0,), (weak[0]["y"],))
    job = dataclasses.replace(every, threshold=threshold, confirm_threshold=0.01,
                              confirm_reach_px=3.0)  # fmt: skip
    kept = {}
    for name, points in (("listed", listed), ("none", ListedPoints())):
        scan_tile(BIG, points, TileStore(tmp_path / name), job)
        kept[name] = {(d["x"], d["y"]) for d in TileStore(tmp_path / name).detections("big")}
    strong = {(d["x"], d["y"]) for d in peaks if d["score"] >= threshold}
    assert kept["none"] == strong
    # The weak peaks within 30 m of the listed point (20 m from the first) join the strong.
    near = {(d["x"], d["y"]) for d in weak
            if np.hypot(d["x"] - listed.x[0], d["y"] - listed.y[0]) <= 30.0}  # fmt: skip
    assert kept["listed"] == strong | near and (weak[0]["x"], weak[0]["y"]) in near


def test_blocks_split_evenly():
    from dam_detection.pipelines.scan.tile_scan import block_sides

    assert block_sides(2096, 1100) == [1048, 1048]
    assert block_sides(2112, 1024) == [704, 704, 704]
    assert block_sides(90, 32) == [30, 30, 30] and sum(block_sides(77, 32)) == 77


def test_a_worker_keeps_only_the_planet_tiles_of_the_block_it_reads():
    # Memory per worker must not grow with the region: reading blocks across many planet tiles
    # leaves only the last block's tiles (here 2 x 2 of 256 px) in the process.
    from dam_detection.image_sources.simulated import world

    reader = tile_job(tiny_fcn()).reader
    world.clear_tile_images()
    try:
        for step in range(4):
            block = reader(32614, COL + 256 * step + 200, TOP, 100, 300)
            assert block.shape == (300, 100, len(BANDS))
            assert len(world._TILE_IMAGES) <= 4
        assert len(world._TILE_IMAGES) == 4
    finally:
        world.keep_tile_images(world.TILE_IMAGES_KEPT)


def test_a_block_across_a_zone_edge_is_each_pixel_of_its_own_zone():
    # Zone 14 ends at 96 W; its grid runs on east of it over zone 15's ground. Read in strips
    # of rows, the block is what a per-pixel lookup of the whole window gives.
    from pyproj import Transformer

    from dam_detection.image_sources.simulated.world import sample_lonlat

    reader = tile_job(tiny_fcn()).reader
    east, _ = Transformer.from_crs("EPSG:4326", "EPSG:32614", always_xy=True).transform(-96.0, 40.0)
    first_col, top_north, width, height = int(east // 10) - 20, 443_000, 40, 300
    block = reader(32614, first_col, top_north, width, height)
    rows, cols = np.mgrid[0:height, 0:width]
    lon, lat = Transformer.from_crs("EPSG:32614", "EPSG:4326", always_xy=True).transform(
        (first_col + cols + 0.5) * 10.0, (top_north - rows + 0.5) * 10.0
    )
    assert (lon < -96.0).any() and (lon > -96.0).any()
    expected = sample_lonlat(reader.planet, reader.month, BANDS, lon, lat)
    for channel, band in enumerate(BANDS):
        np.testing.assert_array_equal(block[..., channel], expected.bands[band])
