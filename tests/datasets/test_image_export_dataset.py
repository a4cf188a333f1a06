"""ImageExportDataset: scene folders in Earth Engine's image-export format."""

from __future__ import annotations

import functools
import json
import os
import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
from kedro.io.core import DatasetError
from shapely.geometry import Point

from dam_detection.datasets import ExportPlan, ImageExport, ImageExportDataset
from dam_detection.image_sources.base import SceneExport
from dam_detection.mixer import Mixer, MixerError
from dam_detection.tfrecord_codec import decode_example, encode_example, frame_record
from tests.conftest import shared_file
from tests.datasets.chunks import numbered_records

PATCH, KERNEL, PER_ROW, TOTAL = (4, 3), (2, 2), 2, 4  # patch [w, h]; 2 x 2 patches
BANDS = ("B2", "NDWI")


def _mixer(total: int = TOTAL) -> dict:
    return Mixer("EPSG:4326", (1e-4, 0, -100.0, 0, -1e-4, 40.0), *PATCH, PER_ROW, total).to_json()


def _patch(index: int) -> np.ndarray:
    height, width = PATCH[1] + KERNEL[1], PATCH[0] + KERNEL[0]
    base = np.arange(height * width * len(BANDS), dtype=np.float32).reshape(height, width, -1)
    return base + 1000 * index


def _record(index: int, drop: str | None = None, values: int | None = None) -> bytes:
    patch = _patch(index)
    features = {band: patch[:, :, c] for c, band in enumerate(BANDS) if band != drop}
    if values is not None:
        features["B2"] = np.zeros(values, np.float32)
    return encode_example(features)


def _scene(records: list[bytes] | None = None, truth: bool = True) -> SceneExport:
    records = records if records is not None else [_record(i) for i in range(TOTAL)]
    truth_frame = gpd.GeoDataFrame(
        {"kind": ["dam_wall"], "dam_id": [0]}, geometry=[Point(-99.9998, 39.9998)], crs=4326
    )
    return SceneExport(
        mixer=_mixer(),
        files={
            "scene-00000.tfrecord.gz": lambda: records[:3],
            "scene-00001.tfrecord.gz": lambda: records[3:],
        },
        truth=truth_frame if truth else None,
    )


@pytest.fixture
def root(tmp_path) -> str:
    return str(tmp_path / "scenes")


def test_save_and_load_round_trip(root):
    ImageExportDataset(filepath=root).save(
        ExportPlan({"alpha": _scene(), "beta": _scene(truth=False)})
    )
    scenes = ImageExportDataset(filepath=root).load()
    assert sorted(scenes) == ["alpha", "beta"]
    alpha = scenes["alpha"]
    assert isinstance(alpha, ImageExport)
    assert alpha.mixer.total_patches == TOTAL and alpha.mixer.crs == "EPSG:4326"
    assert [Path(p).name for p in alpha.file_paths] == [
        "scene-00000.tfrecord.gz",
        "scene-00001.tfrecord.gz",
    ]
    assert alpha.kernel_size == KERNEL
    assert set(alpha.bands) == set(BANDS)
    patches = list(alpha.iter_patches(bands=BANDS))
    assert len(patches) == TOTAL
    for index, patch in enumerate(patches):
        np.testing.assert_array_equal(patch, _patch(index))
    batches = list(alpha.iter_patches(bands=["NDWI"], batch_size=3))
    assert [b.shape for b in batches] == [(3, 5, 6, 1), (1, 5, 6, 1)]
    np.testing.assert_array_equal(batches[1][0, :, :, 0], _patch(3)[:, :, 1])
    truth = alpha.truth()
    assert truth.crs.to_epsg() == 4326 and truth["kind"].tolist() == ["dam_wall"]
    assert scenes["beta"].truth() is None
    assert json.loads((Path(root) / "alpha/scene-mixer.json").read_text()) == _mixer()


def test_given_kernel_size_is_checked(root):
    ImageExportDataset(filepath=root).save(ExportPlan({"alpha": _scene()}))
    good = ImageExportDataset(filepath=root, load_args={"kernel_size": [2, 2]}).load()["alpha"]
    assert good.patch_shape == (5, 6)
    bad = ImageExportDataset(filepath=root, load_args={"kernel_size": [4, 4]}).load()["alpha"]
    with pytest.raises(MixerError, match=r"kernel_size \[4, 4\].*fix load_args.kernel_size"):
        _ = bad.kernel_size


def test_skips_complete_scenes_unless_overwrite(root):
    dataset = ImageExportDataset(filepath=root, save_args={"overwrite": False})
    dataset.save(ExportPlan({"alpha": _scene()}))

    def must_not_run():
        raise AssertionError("a complete scene was rewritten")

    rerun = _scene()
    rerun.files = {name: must_not_run for name in rerun.files}
    dataset.save(ExportPlan({"alpha": rerun}))
    assert len(list(dataset.load()["alpha"].iter_patches())) == TOTAL


def test_overwrite_removes_stale_files(root):
    dataset = ImageExportDataset(filepath=root)
    scene = _scene()
    scene.files["scene-00002.tfrecord.gz"] = lambda: [_record(9)]
    dataset.save(ExportPlan({"alpha": scene}))
    dataset.save(ExportPlan({"alpha": _scene()}))
    assert len(dataset.load()["alpha"].file_paths) == 2


def test_real_mixer_sample_parses(root):
    folder = Path(root) / "sample"
    folder.mkdir(parents=True)
    sample_mixer = shared_file("gee_samples/image_export-mixer.json")
    shutil.copy(sample_mixer, folder / sample_mixer.name)
    sample = ImageExportDataset(filepath=root).load()["sample"]
    assert sample.prefix == "image_export"
    mixer = sample.mixer
    assert (mixer.total_patches, mixer.patches_per_row, mixer.rows) == (15, 5, 3)
    assert mixer.crs == "EPSG:4326"
    assert (mixer.patch_width, mixer.patch_height) == (256, 256)
    assert mixer.pixel_to_crs(0, 0) == pytest.approx((-111.10489198130018, 33.66643139753254))
    with pytest.raises(MixerError, match="no patch files"):
        _ = sample.file_paths


def test_record_count_must_match_total_patches(root):
    ImageExportDataset(filepath=root).save(
        ExportPlan({"few": _scene([_record(i) for i in range(3)])})
    )
    ImageExportDataset(filepath=root).save(
        ExportPlan({"many": _scene([_record(i) for i in range(6)])})
    )
    scenes = ImageExportDataset(filepath=root).load()
    with pytest.raises(MixerError, match="hold 3 records but scene-mixer.json says totalPatches 4"):
        list(scenes["few"].iter_patches())
    with pytest.raises(MixerError, match=r"scene-00001.tfrecord.gz: record 1 is patch 4, beyond"):
        list(scenes["many"].iter_patches())


def test_band_value_count_must_match_buffered_patch(root):
    records = [_record(0), _record(1), _record(2), _record(3, values=7)]
    ImageExportDataset(filepath=root).save(ExportPlan({"alpha": _scene(records)}))
    alpha = ImageExportDataset(filepath=root).load()["alpha"]
    with pytest.raises(
        MixerError, match=r"scene-00001.tfrecord.gz: record 0 \(patch 3\) band 'B2'"
    ):
        list(alpha.iter_patches())


def test_missing_band_names_record_and_file(root):
    records = [_record(0), _record(1, drop="NDWI"), _record(2), _record(3)]
    ImageExportDataset(filepath=root).save(ExportPlan({"alpha": _scene(records)}))
    alpha = ImageExportDataset(filepath=root).load()["alpha"]
    with pytest.raises(
        MixerError, match=r"scene-00000.tfrecord.gz: record 1 \(patch 1\) has no band 'NDWI'"
    ):
        list(alpha.iter_patches(bands=BANDS))


def test_uncompressed_files_named_gz_are_read(root):
    ImageExportDataset(filepath=root).save(ExportPlan({"alpha": _scene()}))
    path = Path(root) / "alpha/scene-00001.tfrecord.gz"
    path.write_bytes(frame_record(_record(3)))
    assert len(list(ImageExportDataset(filepath=root).load()["alpha"].iter_patches())) == TOTAL


def test_missing_folder_names_path_and_command(root):
    dataset = ImageExportDataset(
        filepath=root, metadata={"created_by": "kedro run --pipelines gee_export"}
    )
    assert not dataset.exists()
    with pytest.raises(DatasetError, match=r"scenes holds no scene folder.*--pipelines gee_export"):
        dataset.load()


def test_memory_protocol_round_trip():
    dataset = ImageExportDataset(filepath="memory://bucket/scenes")
    dataset.save(ExportPlan({"alpha": _scene()}))
    assert dataset.exists()
    assert len(list(dataset.load()["alpha"].iter_patches())) == TOTAL


def test_interrupted_scene_resumes_and_changed_scene_is_rewritten(root):
    dataset = ImageExportDataset(filepath=root, save_args={"overwrite": False})
    dataset.save(ExportPlan({"alpha": _scene()}))
    (Path(root) / "alpha/scene-mixer.json").unlink()  # as if interrupted before the mixer

    def must_not_run():
        raise AssertionError("a complete file of an interrupted export was rewritten")

    resumed = _scene()
    resumed.files["scene-00000.tfrecord.gz"] = must_not_run
    dataset.save(ExportPlan({"alpha": resumed}))
    assert len(list(dataset.load()["alpha"].iter_patches())) == TOTAL

    changed = _scene([_record(i) for i in range(2)])
    changed.mixer = _mixer(total=2)
    dataset.save(ExportPlan({"alpha": changed}))
    assert dataset.load()["alpha"].mixer.total_patches == 2
    assert len(list(dataset.load()["alpha"].iter_patches())) == 2


def test_parallel_save_writes_each_scene_in_one_worker(root):
    scenes = {
        name: SceneExport(
            mixer=_mixer(),
            files={
                f"scene-{n:05d}.tfrecord.gz": functools.partial(numbered_records, n, 2)
                for n in range(2)
            },
        )
        for name in ("alpha", "beta")
    }
    ImageExportDataset(filepath=root, save_args={"workers": 2}).save(ExportPlan(scenes))
    loaded = ImageExportDataset(filepath=root).load()
    for scene in loaded.values():
        pids = {
            int(decode_example(record)["pid"][0])
            for path in scene.file_paths
            for record in scene._records(path)
        }
        assert len(pids) == 1 and os.getpid() not in pids
        assert scene.count_records() == 4


def test_changed_fingerprint_rewrites_a_complete_scene(root):
    dataset = ImageExportDataset(filepath=root, save_args={"overwrite": False})
    dataset.save(ExportPlan({"alpha": _scene()}, "options-1"))
    same = _scene()
    same.files = {name: _must_not_run for name in same.files}
    dataset.save(ExportPlan({"alpha": same}, item_fingerprints={"alpha": "options-1"}))
    other = _scene([_record(i + 10) for i in range(TOTAL)])
    dataset.save(ExportPlan({"alpha": other}, item_fingerprints={"alpha": "options-2"}))
    first = next(dataset.load()["alpha"].iter_patches(bands=BANDS))
    np.testing.assert_array_equal(first, _patch(10))


def _must_not_run():
    raise AssertionError("a complete scene of the same settings was rewritten")


def test_a_torn_scene_file_names_the_file_the_scene_and_the_fix(root):
    ImageExportDataset(filepath=root).save(ExportPlan({"alpha": _scene()}))
    torn = Path(root) / "alpha" / "scene-00001.tfrecord.gz"
    torn.write_bytes(torn.read_bytes()[:-40])  # an interrupted download
    scene = ImageExportDataset(filepath=root).load()["alpha"]
    with pytest.raises(MixerError) as raised:
        list(scene.iter_patches())
    message = str(raised.value)
    assert "scene 'alpha'" in message and "scene-00001.tfrecord.gz is damaged" in message
    assert "export it again (kedro run --pipelines gee_export)" in message
