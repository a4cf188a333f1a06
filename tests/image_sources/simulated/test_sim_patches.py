"""Patch records of the simulated planet: format, bands, determinism, labels and masks."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely

from dam_detection.image_sources.base import PatchRequest
from dam_detection.image_sources.simulated import SimulatedEarth
from dam_detection.image_sources.simulated.bands_out import normalized_difference
from dam_detection.tfrecord_codec import decode_example
from tests.settings import composite_window

WINDOW = composite_window()
RADIUS = 16
BANDS = ("B2", "B3", "B4", "B8", "NDWI", "AVE")
#: Small tiles keep the tests fast; the planet is the same kind of world at any tile size.
TILE_PX = 256


def earth(**overrides) -> SimulatedEarth:
    return SimulatedEarth(**{"seed": 3, "workers": 1, "tile_px": TILE_PX, **overrides})


def _points(labels: list[int], step: float = 0.004) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"point_index": np.arange(len(labels)), "kind": "random", "label": labels},
        geometry=[
            shapely.Point(-110.35 + step * i, 37.75 + step * i / 3) for i in range(len(labels))
        ],
        crs="EPSG:4326",
    )


def _records(source: SimulatedEarth, labels: list[int], **request) -> dict[int, dict]:
    files = source.patch_files(
        _points(labels), PatchRequest(composite=WINDOW, radius=RADIUS, **request)
    )
    decoded = [decode_example(r) for name in sorted(files) for r in files[name]()]
    return {int(record["point_index"][0]): record for record in decoded}


def test_files_are_split_and_records_carry_label_and_index() -> None:
    source = earth(missing_band_rate=0.0)
    files = source.patch_files(
        _points([1, 0, 0, 0, 1]),
        PatchRequest(
            composite=WINDOW, radius=RADIUS, bands=BANDS, points_per_file=2, label_key="class"
        ),
    )
    assert list(files) == ["patches-00000", "patches-00001", "patches-00002"]
    records = [decode_example(r) for name in files for r in files[name]()]
    labels = {int(r["point_index"][0]): float(r["class"][0]) for r in records}
    assert labels == {0: 1.0, 1: 0.0, 2: 0.0, 3: 0.0, 4: 1.0}
    for record in records:
        for band in BANDS:
            assert record[band].shape == ((2 * RADIUS + 1) ** 2,)
        np.testing.assert_array_equal(
            record["NDWI"], normalized_difference(record["B3"], record["B8"])
        )
        assert 0.0 < float(np.median(record["B2"])) < 0.3


def test_same_seed_same_pixels_other_seed_other_pixels() -> None:
    first = _records(earth(seed=5), [1, 0, 0])
    again = _records(earth(seed=5), [1, 0, 0])
    other = _records(earth(seed=6), [1, 0, 0])
    for index, record in first.items():
        np.testing.assert_array_equal(record["B2"], again[index]["B2"])
        assert not np.array_equal(record["B2"], other[index]["B2"])


def test_two_workers_write_the_same_records_as_one() -> None:
    labels = [1, 0, 0, 1, 0, 0]
    one = _records(earth(seed=8, workers=1), labels)
    two = _records(earth(seed=8, workers=2), labels)
    for index, record in one.items():
        for band in record:
            np.testing.assert_array_equal(record[band], two[index][band])


def test_the_label_comes_from_the_inventory_not_the_picture() -> None:
    points = _points([1, 0])
    points.loc[1, "geometry"] = points.geometry[0]  # same place, opposite labels
    files = earth().patch_files(points, PatchRequest(composite=WINDOW, radius=RADIUS))
    first, second = (decode_example(r) for f in files.values() for r in f())
    assert {float(first["label"][0]), float(second["label"][0])} == {0.0, 1.0}
    for band in ("B2", "NDWI", "AVE"):
        np.testing.assert_array_equal(first[band], second[band])


def test_records_parse_with_tensorflow() -> None:
    tf = pytest.importorskip("tensorflow")
    files = earth(missing_band_rate=0.0).patch_files(
        _points([1]), PatchRequest(composite=WINDOW, radius=RADIUS)
    )
    record = next(iter(next(iter(files.values()))()))
    spec = {band: tf.io.FixedLenFeature([33, 33], tf.float32) for band in ("B2", "NDWI", "AVE")}
    spec["label"] = tf.io.FixedLenFeature([1], tf.float32)
    parsed = tf.io.parse_single_example(record, spec)
    assert parsed["B2"].shape == (33, 33)
    assert float(parsed["label"][0]) == 1.0
    np.testing.assert_array_equal(parsed["AVE"].numpy().ravel(), decode_example(record)["AVE"])


def test_a_band_whose_centre_pixel_is_masked_is_left_out() -> None:
    labels = [0] * 40
    masked = _records(earth(seed=2, missing_band_rate=0.5), labels)
    clear = _records(earth(seed=2, missing_band_rate=0.0), labels)
    default_bands = {"B2", "B3", "B4", "NDWI", "AVE"}
    assert all(default_bands <= set(record) for record in clear.values())
    partial = [default_bands & set(r) for r in masked.values() if not default_bands <= set(r)]
    assert len(partial) >= 5
    for present in partial:  # whole groups go: the Sentinel-2 bands together, or AVE
        assert present in (set(), {"AVE"}, {"B2", "B3", "B4", "NDWI"})
    for record in masked.values():  # masked pixels inside a patch are 0
        for band in default_bands & set(record):
            assert record[band].shape == ((2 * RADIUS + 1) ** 2,)
