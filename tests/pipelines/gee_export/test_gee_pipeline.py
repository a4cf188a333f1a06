"""The gee_export pipeline through a real KedroSession in the test environment."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import tensorflow as tf
from pyproj import Transformer
from shapely.geometry import Point

from dam_detection.datasets import ImageExportDataset, TFRecordDataset
from dam_detection.image_sources.settings import ImageSourceSettings
from dam_detection.pipelines.gee_export import nodes
from dam_detection.pipelines.gee_export.settings import (
    CompositeWindowSettings,
    PatchExportSettings,
)
from dam_detection.tfrecord_codec import decode_example
from tests.conftest import run_kedro
from tests.pipelines.gee_export.fake_source import FakeSource
from tests.settings import base_settings

BANDS = ["B2", "B3", "B4", "NDWI", "AVE"]
KINDS = ["dam", "dam", "dam", "bridge", "bridge", "water_edge", "water_edge", "random", "random"]


def write_points(project) -> gpd.GeoDataFrame:
    """A tiny points table, as ingest_points writes it, in the project copy."""
    points = gpd.GeoDataFrame(
        {
            "point_id": [f"test:{i:03d}" for i in range(len(KINDS))],
            "point_index": np.arange(len(KINDS), dtype="int64"),
            "source": "test",
            "kind": KINDS,
            "label": [int(kind == "dam") for kind in KINDS],
            "name": None,
            "split": ["train", "val", "test"] * 3,
        },
        geometry=[Point(-99.9 + 0.05 * i, 40.2 + 0.03 * i) for i in range(len(KINDS))],
        crs=4326,
    )
    path = project / "data/03_primary/points.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    points.to_parquet(path)
    return points


def test_pipeline_wiring_with_a_fake_source(kedro_project, monkeypatch):
    monkeypatch.setattr(nodes, "make_image_source", lambda config, seed: FakeSource())
    write_points(kedro_project)
    run_kedro(kedro_project, ["gee_export"])
    patches = TFRecordDataset(filepath=str(kedro_project / "data/02_intermediate/patches")).load()
    assert len(patches) == 2  # 9 points, 8 per file in the test env
    spec = {band: tf.io.FixedLenFeature([33, 33], tf.float32) for band in BANDS}
    assert sum(1 for r in patches.tf_dataset() if tf.io.parse_single_example(r, spec)) == 9
    scenes = ImageExportDataset(filepath=str(kedro_project / "data/02_intermediate/scenes")).load()
    assert scenes["test_scene"].mixer.total_patches == (96 // 32) * (80 // 32)
    assert (kedro_project / "data/08_reporting/patch_gallery.png").stat().st_size > 1000


def test_unknown_setting_is_rejected_before_any_node_runs(kedro_project, monkeypatch):
    monkeypatch.setattr(nodes, "make_image_source", lambda config, seed: FakeSource())
    write_points(kedro_project)
    with pytest.raises(Exception, match="points_per_fille"):
        run_kedro(
            kedro_project,
            ["gee_export"],
            params={"gee_export": {"patches": {"points_per_fille": 3}}},
        )
    assert not (kedro_project / "data/02_intermediate/patches").exists()


def _spec(radius_px: int) -> dict:
    return {band: tf.io.FixedLenFeature([radius_px, radius_px], tf.float32) for band in BANDS}


@pytest.mark.slow
def test_pipeline_runs_offline_with_the_simulated_source(kedro_project):
    write_points(kedro_project)
    run_kedro(kedro_project, ["gee_export"])
    data = kedro_project / "data"
    patches = TFRecordDataset(filepath=str(data / "02_intermediate/patches")).load()
    parsed, indices = 0, []
    for record in patches.tf_dataset():
        features = decode_example(record.numpy())
        indices.append(int(features["point_index"][0]))
        if all(band in features for band in BANDS):  # a masked centre drops a band, as in EE
            example = tf.io.parse_single_example(record, _spec(33))
            assert example["B2"].shape == (33, 33)
            parsed += 1
    assert sorted(indices) == list(range(len(KINDS))) and parsed >= len(KINDS) - 2

    scene = ImageExportDataset(filepath=str(data / "02_intermediate/scenes")).load()["test_scene"]
    mixer = scene.mixer
    assert (mixer.patches_per_row, mixer.rows, mixer.total_patches) == (3, 2, 6)
    assert scene.kernel_size == (16, 16)
    patch = list(scene.iter_patches(bands=BANDS))
    assert len(patch) == 6 and patch[0].shape == (48, 48, 5)
    # Neighbouring patches overlap by the kernel: the same ground, the same values.
    np.testing.assert_array_equal(patch[0][:, 32:48], patch[1][:, 0:16])
    np.testing.assert_array_equal(patch[0][32:48, :], patch[3][0:16, :])
    centre = Transformer.from_crs(mixer.crs, 4326, always_xy=True).transform(
        *mixer.pixel_to_crs(mixer.width_px / 2, mixer.height_px / 2)
    )
    assert centre == pytest.approx((-99.5, 40.5), abs=20 * 10 / 111_000)  # within 20 pixels
    assert abs(mixer.affine[0]) > 0 and mixer.affine[4] < 0  # north-up
    assert (data / "08_reporting/patch_gallery.png").stat().st_size > 1000

    # A re-run skips every complete file: nothing is rewritten.
    files = sorted((data / "02_intermediate").rglob("*.tfrecord.gz"))
    stamps = [path.stat().st_mtime_ns for path in files]
    run_kedro(kedro_project, ["gee_export"])
    assert [path.stat().st_mtime_ns for path in files] == stamps
    # Other settings: the fingerprints differ, so nothing is resumed and everything is rewritten.
    run_kedro(kedro_project, ["gee_export"], params={"seed": 43})
    assert all(path.stat().st_mtime_ns != stamp for path, stamp in zip(files, stamps, strict=True))


def test_same_planet_same_bytes(tmp_path):
    points = write_points(tmp_path)
    settings = base_settings(PatchExportSettings, "gee_export.patches", points_per_file=5)
    composite = base_settings(CompositeWindowSettings, "gee_export.composite")
    outputs = {}
    for run, planet_seed in (("a", 42), ("b", 42), ("c", 43)):
        source = base_settings(
            ImageSourceSettings,
            "image_source",
            simulated={"seed": planet_seed, "workers": 1, "tile_px": 256, "tile_cache": None},
        )
        folder = tmp_path / run
        TFRecordDataset(filepath=str(folder)).save(
            nodes.export_patches(points, source, BANDS, 16, 7, composite, settings)
        )
        outputs[run] = [p.read_bytes() for p in sorted(folder.glob("*.tfrecord.gz"))]
    assert len(outputs["a"]) == 2
    assert outputs["a"] == outputs["b"]
    assert outputs["a"] != outputs["c"]
