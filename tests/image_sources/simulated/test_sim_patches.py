"""Patch records of the simulated Earth: format, bands, determinism and what is drawn."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from scipy import ndimage

from dam_detection.image_sources.base import PatchRequest
from dam_detection.image_sources.simulated import SimulatedEarth
from dam_detection.image_sources.simulated.bands_out import normalized_difference
from dam_detection.image_sources.simulated.patch_scenes import compose_patch
from dam_detection.image_sources.simulated.render import (
    Nuisances,
    PatchTask,
    patch_rng,
    render_patch,
)
from dam_detection.tfrecord_codec import decode_example
from tests.settings import composite_window

WINDOW = composite_window()

RADIUS = 16
BANDS = ("B2", "B3", "B4", "B8", "NDWI", "AVE")


def _points(kinds: list[str]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "point_index": np.arange(len(kinds)),
            "kind": kinds,
            "label": [1 if kind == "dam" else 0 for kind in kinds],
        },
        geometry=[shapely.Point(-111.0 + 0.01 * i, 34.0 + 0.003 * i) for i in range(len(kinds))],
        crs="EPSG:4326",
    )


def _records(earth: SimulatedEarth, kinds: list[str], **request) -> list[bytes]:
    files = earth.patch_files(
        _points(kinds), PatchRequest(composite=WINDOW, radius=RADIUS, **request)
    )
    return [record for name in sorted(files) for record in files[name]()]


def test_files_are_split_and_records_carry_label_and_index() -> None:
    earth = SimulatedEarth(seed=3, workers=1, missing_band_rate=0.0)
    files = earth.patch_files(
        _points(["dam", "bridge", "water_edge", "random", "dam"]),
        PatchRequest(
            composite=WINDOW, radius=RADIUS, bands=BANDS, points_per_file=2, label_key="class"
        ),
    )
    assert list(files) == ["patches-00000", "patches-00001", "patches-00002"]
    records = [decode_example(r) for name in files for r in files[name]()]
    assert [float(r["point_index"][0]) for r in records] == [0, 1, 2, 3, 4]
    assert [float(r["class"][0]) for r in records] == [1, 0, 0, 0, 1]
    for record in records:
        for band in BANDS:
            assert record[band].shape == ((2 * RADIUS + 1) ** 2,)
        b3, b8 = record["B3"], record["B8"]
        np.testing.assert_array_equal(record["NDWI"], normalized_difference(b3, b8))
        assert 0.0 < float(np.median(record["B2"])) < 0.3


def test_same_seed_same_bytes_other_seed_other_bytes() -> None:
    kinds = ["dam", "water_edge"]
    first = _records(SimulatedEarth(seed=5, workers=1), kinds)
    again = _records(SimulatedEarth(seed=5, workers=1), kinds)
    other = _records(SimulatedEarth(seed=6, workers=1), kinds)
    assert first == again
    assert all(a != b for a, b in zip(first, other, strict=True))


def test_two_workers_write_the_same_records_as_one() -> None:
    kinds = ["dam", "bridge", "random", "water_edge", "dam", "random"]
    one = _records(SimulatedEarth(seed=8, workers=1), kinds)
    two = _records(SimulatedEarth(seed=8, workers=2), kinds)
    assert one == two


def test_records_parse_with_tensorflow() -> None:
    tf = pytest.importorskip("tensorflow")
    record = _records(SimulatedEarth(seed=1, workers=1, missing_band_rate=0.0), ["dam"])[0]
    spec = {band: tf.io.FixedLenFeature([33, 33], tf.float32) for band in ("B2", "NDWI", "AVE")}
    spec["label"] = tf.io.FixedLenFeature([1], tf.float32)
    parsed = tf.io.parse_single_example(record, spec)
    assert parsed["B2"].shape == (33, 33)
    assert float(parsed["label"][0]) == 1.0
    decoded = decode_example(record)
    np.testing.assert_array_equal(parsed["AVE"].numpy().ravel(), decoded["AVE"])


def _task(kind: str, seed: int, lon: float = 7.5) -> PatchTask:
    return PatchTask(
        0,
        kind,
        float(kind == "dam"),
        lon,
        46.0,
        seed,
        40,
        BANDS,
        "label",
        7,
        Nuisances(0.0, 0.0, 0.0),
    )


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5, 6])
def test_dam_has_its_wall_at_the_centre_and_a_flat_reservoir_upstream(seed: int) -> None:
    task = _task("dam", seed)
    canvas, _ = compose_patch("dam", 81, patch_rng(seed, task.lon, task.lat, "dam"))
    centre = (40, 40)
    assert not canvas.is_water()[centre] and canvas.structure[centre] > 0
    near = np.zeros(canvas.shape, bool)
    near[25:56, 25:56] = True
    levels = canvas.water[near & canvas.is_water()]
    reservoir_level = np.nanmax(levels)
    reservoir = canvas.water == reservoir_level
    assert reservoir[near].sum() > 20  # the reservoir reaches the wall
    # The water stands higher than the valley floor below the wall.
    below = near & ~canvas.is_water() & (canvas.structure <= 0)
    assert reservoir_level > np.percentile(canvas.terrain[below], 5) + 3
    ave = render_patch(task)["AVE"]
    np.testing.assert_array_equal(np.unique(ave[reservoir]), [np.round(reservoir_level)])


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_bridge_has_water_on_both_sides_at_one_level(seed: int) -> None:
    canvas, _ = compose_patch("bridge", 81, patch_rng(seed, 7.5, 46.0, "bridge"))
    assert canvas.structure[40, 40] > 0 and not canvas.is_water()[40, 40]
    window = (slice(25, 56), slice(25, 56))
    water = canvas.is_water()[window]
    _, parts = ndimage.label(water)
    assert parts >= 2  # the deck splits the river
    assert np.nanmax(canvas.water[window]) - np.nanmin(canvas.water[window]) < 2.0


def test_missing_band_rate() -> None:
    kinds = ["random"] * 12
    always = _records(SimulatedEarth(seed=2, workers=1, missing_band_rate=1.0), kinds)
    never = _records(SimulatedEarth(seed=2, workers=1, missing_band_rate=0.0), kinds)
    default_bands = {"B2", "B3", "B4", "NDWI", "AVE"}
    for record in map(decode_example, always):
        present = default_bands & set(record)
        assert present in ({"AVE"}, {"B2", "B3", "B4", "NDWI"})
        for band in present:  # masked pixels inside a patch are 0
            assert record[band].shape == ((2 * RADIUS + 1) ** 2,)
    assert all(default_bands <= set(decode_example(r)) for r in never)


def test_unknown_kind_renders_land_and_label_one_always_means_dam(caplog) -> None:
    points = _points(["volcano", "bridge"])
    points["label"] = [0, 1]
    earth = SimulatedEarth(seed=4, workers=1)
    with caplog.at_level("WARNING"):
        records = [
            r
            for chunk in earth.patch_files(
                points, PatchRequest(composite=WINDOW, radius=RADIUS)
            ).values()
            for r in chunk()
        ]
    assert len(records) == 2
    assert "unknown kind 'volcano'" in caplog.text and "drawing a dam" in caplog.text
    dam = decode_example(records[1])
    assert float(dam["label"][0]) == 1.0
