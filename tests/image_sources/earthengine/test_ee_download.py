"""Reading finished exports from a bucket: records come out exactly as Earth Engine left them."""

from __future__ import annotations

import dataclasses
import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from dam_detection.image_sources.base import SceneRequest
from dam_detection.image_sources.earthengine.download import (
    ExportFilesNotFoundError,
    FolderListing,
    read_records,
)
from dam_detection.mixer import MixerError
from dam_detection.tfrecord_codec import encode_example, frame_record
from tests.image_sources.earthengine.conftest import FakeTaskApi, destination_prefix
from tests.settings import composite_window

WINDOW = composite_window()

pytestmark = pytest.mark.usefixtures("ee_offline")


def table_records(count: int, start: int = 0) -> list[bytes]:
    """Earth Engine table-export records: a float_list per band, ``class``, ``point_index``."""
    rng = np.random.default_rng(start)
    return [
        encode_example(
            {
                "B2": rng.random(25, dtype=np.float32),
                "B3": rng.random(25, dtype=np.float32),
                "class": [float(i % 2)],
                "point_index": [float(start + i)],
            }
        )
        for i in range(count)
    ]


def write(path: Path, records: list[bytes], compressed: bool) -> None:
    data = b"".join(frame_record(record) for record in records)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if compressed else data)


@pytest.mark.parametrize("compressed", [True, False])
def test_table_export_files_read_back_unchanged(bucket, compressed):
    parts = [table_records(3, 0), table_records(2, 3)]
    write(bucket / "exp" / "patches-00000-ab-00001.tfrecord.gz", parts[1], compressed)
    write(bucket / "exp" / "patches-00000-ab-00000.tfrecord.gz", parts[0], compressed)
    write(bucket / "exp" / "patches-00000-abc.tfrecord.gz", table_records(1, 9), compressed)
    found = FolderListing(bucket.as_uri()).export_files("exp/patches-00000-ab", generation=0)
    assert [part for part, _ in found] == [0, 1]  # not the other export sharing the prefix
    records = [r for _, path in found for r in read_records(bucket.as_uri(), path)]
    assert records == parts[0] + parts[1]


def test_missing_export_files_say_where_they_were_looked_for(bucket):
    with pytest.raises(ExportFilesNotFoundError, match="read_url"):
        FolderListing(bucket.as_uri()).export_files("exp/nothing", generation=0)


def scene_request() -> SceneRequest:
    return SceneRequest(
        composite=WINDOW,
        name="lake",
        center_lon=-111.1,
        center_lat=33.65,
        width_px=64,
        height_px=32,
        bands=("B2",),
        patch_dimensions=(16, 16),
        kernel_size=(4, 4),
        file_prefix="scene",
    )


def patch_examples(count: int) -> list[bytes]:
    return [encode_example({"B2": np.full(20 * 20, i, dtype=np.float32)}) for i in range(count)]


def test_scene_files_are_known_after_the_export_and_read_back_unchanged(
    scene_source, bucket, monkeypatch
):
    patches = patch_examples(8)
    planned = scene_source.scene_export(scene_request()).mixer

    def earth_engine_writes(request_id, config):
        prefix = bucket / destination_prefix(config)
        prefix.parent.mkdir(parents=True)
        (prefix.parent / f"{prefix.name}-mixer.json").write_text(json.dumps(planned))
        for part, chunk in enumerate((patches[:3], patches[3:6], patches[6:])):
            write(prefix.parent / f"{prefix.name}-{part:05d}.tfrecord.gz", chunk, True)

    api = FakeTaskApi(earth_engine_writes).install(monkeypatch)
    export = scene_source.scene_export(scene_request())
    assert (
        export.mixer == planned and planned["totalPatches"] == 8 and planned["patchesPerRow"] == 4
    )
    assert api.starts == [] and "pending" in repr(export.files)
    assert list(export.files) == [f"scene-{i:05d}.tfrecord.gz" for i in range(3)]
    assert [r for name in export.files for r in export.files[name]()] == patches
    ((_, config),) = api.starts
    assert config["fileExportOptions"]["tfRecordOptions"]["compress"] is True


def test_a_single_file_scene_and_a_mixer_that_disagrees(scene_source, bucket, monkeypatch):
    patches = patch_examples(8)
    planned = scene_source.scene_export(scene_request()).mixer
    moved = json.loads(json.dumps(planned))
    moved["projection"]["affine"]["doubleMatrix"][2] += 0.001

    def earth_engine_writes(request_id, config):
        prefix = bucket / destination_prefix(config)
        prefix.parent.mkdir(parents=True, exist_ok=True)
        (prefix.parent / f"{prefix.name}-mixer.json").write_text(json.dumps(mixer))
        write(prefix.parent / f"{prefix.name}.tfrecord.gz", patches, True)

    mixer = planned
    FakeTaskApi(earth_engine_writes).install(monkeypatch)
    files = scene_source.scene_export(scene_request()).files
    assert list(files) == ["scene-00000.tfrecord.gz"]
    assert list(files["scene-00000.tfrecord.gz"]()) == patches
    mixer = moved
    other = SceneRequest(**{**scene_request().__dict__, "name": "other"})
    with pytest.raises(MixerError, match="affine"):
        len(scene_source.scene_export(other).files)


def test_scenes_share_the_queue_and_export_in_parallel(scene_source, bucket, monkeypatch):
    patches = patch_examples(8)
    planned = scene_source.scene_export(scene_request()).mixer

    def earth_engine_writes(request_id, config):
        prefix = bucket / destination_prefix(config)
        prefix.parent.mkdir(parents=True, exist_ok=True)
        (prefix.parent / f"{prefix.name}-mixer.json").write_text(json.dumps(planned))
        write(prefix.parent / f"{prefix.name}.tfrecord.gz", patches, True)

    api = FakeTaskApi(earth_engine_writes).install(monkeypatch)
    scenes = [
        scene_source.scene_export(dataclasses.replace(scene_request(), name=name))
        for name in ("lake", "river", "canyon")
    ]
    assert list(scenes[0].files) == ["scene-00000.tfrecord.gz"]
    # Waiting for the first scene started all three: they run side by side in Earth Engine.
    assert len(api.starts) == 3 and api.max_live == 3
    assert all(list(scene.files) == ["scene-00000.tfrecord.gz"] for scene in scenes[1:])
    assert len(api.starts) == 3
