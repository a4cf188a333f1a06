"""Dam patches re-centred on the wall the image shows (NDWI and elevation only)."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from dam_detection.pipelines.shard_tfrecords.snapping import find_wall, shift_patch, snap_dam
from dam_detection.tfrecord_codec import encode_example
from tests.pipelines.shard_tfrecords.test_shard_pass import _run

SIZE = 65
CENTRE = SIZE // 2


def reservoir_patch(wall_row: int, below_m: float) -> tuple[np.ndarray, np.ndarray]:
    """A lake at 100 m north of a wall across the valley at ``wall_row``; ground below it."""
    rows, cols = np.mgrid[0:SIZE, 0:SIZE]
    ndwi = np.full((SIZE, SIZE), -0.4, np.float32)
    elevation = 100.0 + 0.8 * np.abs(cols - CENTRE).astype(np.float32)  # valley sides rise
    lake = (rows < wall_row) & (np.abs(cols - CENTRE) < 14)
    ndwi[lake] = 0.5
    elevation[lake] = 100.0
    elevation[rows >= wall_row + 2] = below_m + 0.8 * np.abs(cols - CENTRE)[rows >= wall_row + 2]
    elevation[wall_row : wall_row + 2] = 104.0  # the crest
    return ndwi, elevation.astype(np.float32)


def test_the_wall_is_found_where_the_valley_falls_below_the_lake() -> None:
    # The inventory point (the centre) lies 12 px up the reservoir from the wall.
    ndwi, elevation = reservoir_patch(wall_row=CENTRE + 12, below_m=80.0)
    result = find_wall(ndwi, elevation, max_shift_px=20, min_drop_m=4.0)
    assert result.shift is not None
    d_row, d_col = result.shift
    assert d_row == 11 and abs(d_col) <= 3  # the lake's last row before the wall
    assert result.drop_m >= 19.0


def test_a_natural_lake_a_cloud_or_a_far_wall_is_not_a_wall() -> None:
    natural, elevation = reservoir_patch(wall_row=CENTRE + 12, below_m=99.0)  # no drop
    assert find_wall(natural, elevation, 20, 4.0).shift is None
    cloud = np.zeros((SIZE, SIZE), np.float32)  # masked: no water seen
    assert find_wall(cloud, elevation, 20, 4.0).shift is None
    far, elevation = reservoir_patch(wall_row=CENTRE + 25, below_m=80.0)
    assert find_wall(far, elevation, 10, 4.0).shift is None  # beyond max_shift_px


def test_snapping_moves_every_band_and_fills_with_zeros() -> None:
    ndwi, elevation = reservoir_patch(wall_row=CENTRE + 12, below_m=80.0)
    blue = np.arange(SIZE * SIZE, dtype=np.float32).reshape(SIZE, SIZE) + 1.0
    bands = {"B2": blue.ravel(), "NDWI": ndwi.ravel(), "AVE": elevation.ravel()}
    moved, result = snap_dam(bands, SIZE, 20, 4.0)
    d_row, d_col = result.shift
    new = moved["B2"].reshape(SIZE, SIZE)
    assert new[CENTRE, CENTRE] == blue[CENTRE + d_row, CENTRE + d_col]
    assert not new[-d_row:, :].any()  # shifted in from beyond the patch: masked
    assert (
        moved["AVE"].reshape(SIZE, SIZE)[CENTRE, CENTRE]
        == elevation[CENTRE + d_row, CENTRE + d_col]
    )


def test_without_ndwi_or_elevation_nothing_moves() -> None:
    bands = {"B2": np.ones(SIZE * SIZE, np.float32)}
    moved, result = snap_dam(bands, SIZE, 20, 4.0)
    assert moved is bands and result.shift is None


def test_shift_patch_round_trip_keeps_the_overlap() -> None:
    image = np.arange(49, dtype=np.float32).reshape(7, 7)
    there = shift_patch({"x": image}, (2, -1))["x"]
    back = shift_patch({"x": there}, (-2, 1))["x"]
    np.testing.assert_array_equal(back[2:, :6], image[2:, :6])
    assert not back[:2].any() and not back[:, 6:].any()


def test_the_shard_pass_recentres_dam_patches_and_reports_it(tmp_path) -> None:
    from tests.pipelines.shard_tfrecords.conftest import RADIUS, points_table, write_tfrecord

    size = 2 * RADIUS + 1
    assert size == 33
    rows, cols = np.mgrid[0:size, 0:size]
    records = []
    for index in range(4):
        ndwi = np.where((rows < 22) & (np.abs(cols - 16) < 8), 0.5, -0.4).astype(np.float32)
        ave = np.where(ndwi > 0, 100.0, np.where(rows >= 24, 80.0, 104.0)).astype(np.float32)
        optical = (np.arange(size * size, dtype=np.float32) + 1.0) / 1e4
        label = 1.0 if index % 2 else 0.0  # only dams move
        records.append(encode_example({
            "B2": optical, "B3": optical, "B4": optical, "NDWI": ndwi.ravel(), "AVE": ave.ravel(),
            "label": np.array([label], np.float32),
            "point_index": np.array([index], np.float32),
        }))  # fmt: skip
    write_tfrecord(tmp_path / "in" / "patches-00000.tfrecord.gz", records)
    points = points_table(["train"] * 4, kinds=["random", "dam", "random", "dam"])
    snap = {"enabled": True, "max_shift_px": 8, "min_drop_m": 4.0}
    _, _, report = _run(tmp_path / "in", tmp_path / "out", points, snap_dams=snap)
    assert report["dams_snapped"]["dam_patches"] == 2
    assert report["dams_snapped"]["recentred"] == 2
    assert report["dams_snapped"]["shift_px"]["p50"] == pytest.approx(5.0, abs=1.0)


def test_shards_carry_the_offsets_of_other_listed_dams_in_each_patch(tmp_path) -> None:
    from dam_detection.bands import DEGREES_PER_PIXEL
    from tests.pipelines.shard_tfrecords.conftest import (
        decode_all,
        good_files,
        points_table,
    )

    good_files(tmp_path / "in", files=1, per_file=3)
    points = points_table(["train"] * 3, kinds=["dam", "dam", "random"])
    # Point 1 lies 5 pixels east and 3 pixels south of point 0; point 2 (not a dam) next to both.
    x0, y0 = points.geometry[0].x, points.geometry[0].y
    points.loc[1, "geometry"] = shapely.Point(
        x0 + 5 * DEGREES_PER_PIXEL, y0 - 3 * DEGREES_PER_PIXEL
    )
    points.loc[2, "geometry"] = shapely.Point(x0 + DEGREES_PER_PIXEL, y0)
    points["label"] = [1, 1, 0]
    shards, _, _ = _run(tmp_path / "in", tmp_path / "out", points)
    records = {int(r["point_index"][0]): r for r in decode_all(shards, shards.paths)}
    np.testing.assert_array_equal(records[0]["other_dams"], [3.0, 5.0])  # row down, column east
    np.testing.assert_array_equal(records[1]["other_dams"], [-3.0, -5.0])
    np.testing.assert_array_equal(
        records[2]["other_dams"].reshape(-1, 2), [[0.0, -1.0], [3.0, 4.0]]
    )
