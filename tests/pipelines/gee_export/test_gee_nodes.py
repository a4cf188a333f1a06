"""gee_export nodes with a fake image source, saved through the real datasets."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pytest
import tensorflow as tf
from matplotlib.figure import Figure
from shapely.geometry import Point

from dam_detection.datasets import ImageExportDataset, TFRecordDataset
from dam_detection.pipelines.gee_export import nodes
from dam_detection.pipelines.gee_export.settings import (
    CompositeWindowSettings,
    GallerySettings,
    PatchExportSettings,
    SceneExportSettings,
)
from tests.conftest import shared_file
from tests.pipelines.gee_export.fake_source import FakeSource
from tests.settings import base_settings, simulated_source

BANDS = ["B2", "B3", "B4", "NDWI", "AVE"]
SOURCE = simulated_source()
COMPOSITE = base_settings(CompositeWindowSettings, "gee_export.composite")
PATCHES = base_settings(PatchExportSettings, "gee_export.patches")
SCENE = {
    "name": "lake",
    "center_lon": -111.0,
    "center_lat": 33.6,
    "width_px": 512,
    "height_px": 512,
}


@pytest.fixture(autouse=True)
def fake_source(monkeypatch):
    monkeypatch.setattr(nodes, "make_image_source", lambda config, seed: FakeSource())


@pytest.fixture
def points() -> gpd.GeoDataFrame:
    kinds = ["dam", "bridge", "water_edge", "random", "dam", "bridge", "random"]
    return gpd.GeoDataFrame(
        {
            "point_index": np.arange(len(kinds))[::-1].astype("int64"),
            "kind": kinds,
            "label": [int(k == "dam") for k in kinds],
        },
        geometry=[Point(-99.5 + i * 0.01, 40.5) for i in range(len(kinds))],
        crs=4326,
    )


def test_patch_request_from_parameters():
    settings = base_settings(
        PatchExportSettings, "gee_export.patches", points_per_file=3, label_key="class"
    )
    request = nodes.build_patch_request(BANDS, 16, 7, COMPOSITE, settings)
    assert request.bands == tuple(BANDS) and request.radius == 16 and request.seed == 7
    assert (request.label_key, request.points_per_file) == ("class", 3)
    with pytest.raises(ValueError, match="more than once"):
        nodes.build_patch_request(["B2", "B2"], 16, 7, COMPOSITE, settings)


def test_patches_and_scenes_composite_the_same_window():
    # One setting, read by both: a patch and the scene around it see the same images.
    composite = base_settings(
        CompositeWindowSettings, "gee_export.composite", start_date="2023-06-01",
        end_date="2023-09-01", max_cloud_percent=5,
    )  # fmt: skip
    patch = nodes.build_patch_request(BANDS, 16, 7, composite, PATCHES)
    scene_settings = base_settings(SceneExportSettings, "gee_export.scene_export")
    (scene,) = nodes.build_scene_requests([SCENE], BANDS, 3, composite, scene_settings)
    assert patch.composite == scene.composite
    assert (scene.composite.start_date, scene.composite.max_cloud_percent) == ("2023-06-01", 5.0)
    with pytest.raises(ValueError, match="start_date"):
        base_settings(CompositeWindowSettings, "gee_export.composite", start_date="2020-01-01")


def test_patches_parse_with_tensorflow(tmp_path, points):
    chunks = nodes.export_patches(
        points,
        SOURCE,
        BANDS,
        16,
        42,
        COMPOSITE,
        base_settings(PatchExportSettings, "gee_export.patches", points_per_file=3),
    )
    assert sorted(chunks.items) == ["patches-00000", "patches-00001", "patches-00002"]
    dataset = TFRecordDataset(filepath=str(tmp_path / "patches"))
    dataset.save(chunks)
    spec = {band: tf.io.FixedLenFeature([33, 33], tf.float32) for band in BANDS}
    spec |= {k: tf.io.FixedLenFeature([], tf.float32) for k in ("label", "point_index")}
    parsed = [tf.io.parse_single_example(r, spec) for r in dataset.load().tf_dataset()]
    assert [int(p["point_index"]) for p in parsed] == list(range(7))  # sorted by point_index
    assert [float(p["label"]) for p in parsed][::-1] == points["label"].astype(float).tolist()


def test_points_without_needed_columns_are_rejected(points):
    with pytest.raises(ValueError, match=r"lacks columns \['point_index'\].*ingest_points"):
        nodes.export_patches(
            points.drop(columns="point_index"),
            SOURCE,
            BANDS,
            16,
            42,
            COMPOSITE,
            PATCHES,
        )


def test_scene_requests_from_parameters():
    settings = base_settings(
        SceneExportSettings,
        "gee_export.scene_export",
        patch_dimensions=[32, 32],
        kernel_size=[16, 16],
        file_prefix="s",
    )
    scenes = [
        {
            "name": "a",
            "center_lon": -100,
            "center_lat": 40,
            "width_px": 96,
            "height_px": 64,
            "options": {"dams": 2},
        }
    ]
    (request,) = nodes.build_scene_requests(scenes, BANDS, 3, COMPOSITE, settings)
    assert (request.width_px, request.patch_dimensions, request.kernel_size) == (
        96,
        (32, 32),
        (16, 16),
    )
    assert request.options == {"dams": 2} and request.seed == 3 and request.file_prefix == "s"
    with pytest.raises(ValueError, match="unique"):
        nodes.build_scene_requests(scenes * 2, BANDS, 3, COMPOSITE, settings)
    with pytest.raises(ValueError, match="holds no whole 32x32 patch"):
        nodes.build_scene_requests([{**scenes[0], "width_px": 20}], BANDS, 3, COMPOSITE, settings)
    with pytest.raises(ValueError, match=r"(?s)gee_export.scenes\[0\].*size.*Extra inputs"):
        nodes.build_scene_requests([{**scenes[0], "size": 3}], BANDS, 3, COMPOSITE, settings)
    with pytest.raises(ValueError, match="even"):
        nodes.build_scene_requests(
            scenes,
            BANDS,
            3,
            COMPOSITE,
            base_settings(SceneExportSettings, "gee_export.scene_export", kernel_size=[15, 15]),
        )


def test_scene_export_mixer_arithmetic_and_overlap(tmp_path):
    settings = base_settings(
        SceneExportSettings,
        "gee_export.scene_export",
        patch_dimensions=[32, 24],
        kernel_size=[8, 12],
        max_file_size_bytes=60_000,
    )
    scenes = [
        {"name": "s", "center_lon": -100.0, "center_lat": 40.0, "width_px": 100, "height_px": 60}
    ]
    ImageExportDataset(filepath=str(tmp_path)).save(
        nodes.export_scenes(SOURCE, scenes, BANDS, 42, COMPOSITE, settings)
    )
    scene = ImageExportDataset(filepath=str(tmp_path), load_args={"kernel_size": [8, 12]}).load()[
        "s"
    ]
    mixer = scene.mixer
    # 100 // 32 = 3 patches per row, 60 // 24 = 2 rows; border tiles dropped.
    assert (mixer.patches_per_row, mixer.rows, mixer.total_patches) == (3, 2, 6)
    assert len(scene.file_paths) > 1
    centre = mixer.pixel_to_crs(mixer.width_px / 2, mixer.height_px / 2)
    assert centre == pytest.approx((-100.0, 40.0), abs=1e-9)
    patches = list(scene.iter_patches(bands=BANDS))
    assert patches[0].shape == (24 + 12, 32 + 8, 5)
    # Neighbours share kx (left/right) and ky (above/below) pixels.
    np.testing.assert_array_equal(patches[0][:, 32:40], patches[1][:, 0:8])
    np.testing.assert_array_equal(patches[0][24:36, :], patches[3][0:12, :])
    assert scene.truth()["kind"].tolist() == ["dam_wall"]


def test_gallery_shows_every_kind(tmp_path, points):
    dataset = TFRecordDataset(filepath=str(tmp_path / "patches"))
    dataset.save(
        nodes.export_patches(
            points,
            SOURCE,
            BANDS,
            16,
            42,
            COMPOSITE,
            base_settings(PatchExportSettings, "gee_export.patches", points_per_file=2),
        )
    )
    figure = nodes.render_patch_gallery(
        dataset.load(),
        points,
        base_settings(GallerySettings, "gee_export.gallery", patches_per_kind=2),
    )
    assert isinstance(figure, Figure)
    labels = [axis.get_ylabel() for axis in figure.axes if axis.get_ylabel()]
    assert labels == ["dam", "bridge", "water_edge", "random"]
    titles = [axis.get_title() for axis in figure.axes]
    assert titles.count("NDWI") == 7 and titles.count("AVE") == 7  # water_edge has one sample
    figure.savefig(tmp_path / "gallery.png")
    assert (tmp_path / "gallery.png").stat().st_size > 1000


def _shape(value):
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [type(item).__name__ for item in value]
    return type(value).__name__


def test_written_mixer_has_the_structure_of_a_real_one(tmp_path):
    settings = base_settings(
        SceneExportSettings,
        "gee_export.scene_export",
        patch_dimensions=[32, 32],
        kernel_size=[16, 16],
    )
    scenes = [
        {"name": "s", "center_lon": -111.0, "center_lat": 33.6, "width_px": 64, "height_px": 64}
    ]
    ImageExportDataset(filepath=str(tmp_path)).save(
        nodes.export_scenes(SOURCE, scenes, BANDS, 1, COMPOSITE, settings)
    )
    written = json.loads((tmp_path / "s/scene-mixer.json").read_text())
    real = json.loads(shared_file("gee_samples/image_export-mixer.json").read_text())
    assert _shape(written) == _shape(real)
    assert (real["totalPatches"], real["patchesPerRow"]) == (15, 5)
