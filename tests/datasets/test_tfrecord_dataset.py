"""TFRecordDataset, tested the way kedro-datasets tests TensorFlowModelDataset."""

from __future__ import annotations

import functools
import gzip
import os
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from kedro.io import DataCatalog
from kedro.io.core import DatasetError

from dam_detection.datasets import ExportPlan, TFRecordDataset, TFRecordFiles
from dam_detection.tfrecord_codec import decode_example, encode_example, frame_record
from tests.datasets.chunks import numbered_records


def _records(tag: str, count: int) -> list[bytes]:
    return [encode_example({"B2": np.full(4, i, np.float32), "tag": tag}) for i in range(count)]


@pytest.fixture
def folder(tmp_path):
    return str(tmp_path / "patches") + "/"


@pytest.fixture
def data():
    return ExportPlan(
        {
            "train/shards-00000-of-00002": _records("a", 3),
            "train/shards-00001-of-00002": lambda: iter(_records("b", 2)),
            "val/shards-00000-of-00001": _records("c", 1),
        }
    )


def _read_all(files: TFRecordFiles) -> dict[str, list[bytes]]:
    return {files.relative(path): list(files.iter_records(path)) for path in files.paths}


def test_save_and_load(folder, data):
    dataset = TFRecordDataset(filepath=folder)
    dataset.save(data)
    files = dataset.load()
    assert isinstance(files, TFRecordFiles)
    assert len(files) == 3
    assert _read_all(files) == {
        "train/shards-00000-of-00002.tfrecord.gz": _records("a", 3),
        "train/shards-00001-of-00002.tfrecord.gz": _records("b", 2),
        "val/shards-00000-of-00001.tfrecord.gz": _records("c", 1),
    }
    assert [files.relative(p) for p in files.paths_under("val")] == [
        "val/shards-00000-of-00001.tfrecord.gz"
    ]
    assert all(files.compression_type(p) == "GZIP" for p in files.paths)
    assert not [name for name in os.listdir(folder + "train") if name.endswith(".tmp")]


def test_exists(folder, data):
    dataset = TFRecordDataset(filepath=folder)
    assert not dataset.exists()
    dataset.save(data)
    assert dataset.exists()


def test_load_missing_folder_names_path_and_command(folder):
    dataset = TFRecordDataset(
        filepath=folder, metadata={"created_by": "kedro run --pipelines gee_export"}
    )
    with pytest.raises(DatasetError, match="does not exist") as error:
        dataset.load()
    assert "patches" in str(error.value)
    assert "kedro run --pipelines gee_export" in str(error.value)


def test_memory_protocol_round_trip(data):
    dataset = TFRecordDataset(filepath="memory://bucket/exports/")
    dataset.save(data)
    files = dataset.load()
    assert files.url(files.paths[0]).startswith("memory://")
    assert _read_all(files)["val/shards-00000-of-00001.tfrecord.gz"] == _records("c", 1)
    glob = TFRecordDataset(filepath="memory://bucket/exports/train/*-00001-*.tfrecord.gz").load()
    assert [glob.relative(p) for p in glob.paths] == ["shards-00001-of-00002.tfrecord.gz"]


def test_tensorflow_reads_what_it_writes(folder, data):
    dataset = TFRecordDataset(filepath=folder)
    dataset.save(data)
    files = dataset.load()
    read = tf.data.TFRecordDataset(files.paths_under("train"), compression_type="GZIP")
    assert [r.numpy() for r in read] == _records("a", 3) + _records("b", 2)
    assert [r.numpy() for r in files.tf_dataset("val")] == _records("c", 1)
    parsed = tf.io.parse_single_example(
        next(iter(files.tf_dataset())), {"B2": tf.io.FixedLenFeature([2, 2], tf.float32)}
    )
    assert parsed["B2"].shape == (2, 2)


def test_uncompressed_file_named_gz_is_sniffed(tmp_path):
    # Earth Engine table exports documented as gzip arrive uncompressed.
    (tmp_path / "a.tfrecord.gz").write_bytes(b"".join(map(frame_record, _records("plain", 2))))
    with gzip.open(tmp_path / "b.tfrecord.gz", "wb") as out:
        out.write(frame_record(_records("gz", 1)[0]))
    files = TFRecordDataset(filepath=str(tmp_path)).load()
    assert [files.compression_type(p) for p in files.paths] == ["", "GZIP"]
    assert list(files.iter_records(files.paths[0])) == _records("plain", 2)
    assert [r.numpy() for r in files.tf_dataset()] == _records("plain", 2) + _records("gz", 1)


def test_skip_existing_files_resumes(folder, data):
    TFRecordDataset(filepath=folder).save(data)

    def must_not_run():
        raise AssertionError("an existing complete file was rewritten")

    resumed = ExportPlan(
        {**data.items, "train/shards-00001-of-00002": must_not_run, "val/new": _records("d", 1)}
    )
    TFRecordDataset(filepath=folder, save_args={"overwrite": False}).save(resumed)
    files = _read_all(TFRecordDataset(filepath=folder).load())
    assert files["train/shards-00001-of-00002.tfrecord.gz"] == _records("b", 2)
    assert files["val/new.tfrecord.gz"] == _records("d", 1)


def test_parallel_save_runs_callables_in_worker_processes(folder):
    chunks = {f"part-{i:05d}": functools.partial(numbered_records, i, 3) for i in range(4)}
    TFRecordDataset(filepath=folder, save_args={"workers": 2}).save(ExportPlan(chunks))
    files = TFRecordDataset(filepath=folder).load()
    decoded = [[decode_example(r) for r in files.iter_records(p)] for p in files.paths]
    assert [[int(r["file"][0]) for r in f] for f in decoded] == [[i] * 3 for i in range(4)]
    pids = [{int(r["pid"][0]) for r in f} for f in decoded]
    assert all(os.getpid() not in p for p in pids)


def test_a_plan_that_must_run_here_is_written_in_this_process(folder):
    # Earth Engine producers need the session of the process that initialised it.
    chunks = {f"part-{i:05d}": functools.partial(numbered_records, i, 2) for i in range(3)}
    plan = ExportPlan(chunks, runs_in="this_process")
    TFRecordDataset(filepath=folder, save_args={"workers": 2}).save(plan)
    files = TFRecordDataset(filepath=folder).load()
    pids = {int(decode_example(r)["pid"][0]) for p in files.paths for r in files.iter_records(p)}
    assert pids == {os.getpid()}


def test_save_takes_only_a_plan(folder):
    with pytest.raises(DatasetError, match="saves an ExportPlan, got dict"):
        TFRecordDataset(filepath=folder).save({"x": _records("a", 1)})


def test_uncompressed_save_and_same_bytes_every_time(tmp_path):
    for run in ("one", "two"):
        TFRecordDataset(filepath=str(tmp_path / run), save_args={"compression": None}).save(
            ExportPlan({"x": _records("a", 2)})
        )
    assert (tmp_path / "one" / "x.tfrecord").read_bytes()[:8] != b"\x1f\x8b"
    for run in ("three", "four"):
        TFRecordDataset(filepath=str(tmp_path / run)).save(ExportPlan({"x": _records("a", 2)}))
    assert (tmp_path / "three/x.tfrecord.gz").read_bytes() == (
        tmp_path / "four/x.tfrecord.gz"
    ).read_bytes()


def test_catalog_entry_and_describe(folder):
    catalog = DataCatalog.from_config(
        {
            "patches": {
                "type": "dam_detection.datasets.TFRecordDataset",
                "filepath": folder,
                "save_args": {"compresslevel": 1},
            }
        }
    )
    catalog.save("patches", ExportPlan({"a": _records("a", 1)}))
    assert len(catalog.load("patches")) == 1
    assert "compresslevel" in str(catalog["patches"])


def test_rejects_stems_leaving_the_folder(folder):
    with pytest.raises(DatasetError, match="invalid file stem"):
        TFRecordDataset(filepath=folder).save(ExportPlan({"../escape": []}))


def test_failing_producer_names_file_and_record_and_keeps_finished_files(folder):
    def failing():
        yield from _records("x", 2)
        raise ValueError("renderer broke")

    dataset = TFRecordDataset(filepath=folder, save_args={"overwrite": False})
    with pytest.raises(DatasetError, match=r"b.tfrecord.gz: record 2 failed .*renderer broke"):
        dataset.save(ExportPlan({"a": _records("a", 1), "b": failing, "c": _records("c", 1)}))
    assert [os.path.basename(p) for p in dataset.load().paths] == ["a.tfrecord.gz"]


def test_changed_fingerprint_rewrites_instead_of_resuming(folder):
    dataset = TFRecordDataset(filepath=folder, save_args={"overwrite": False})
    dataset.save(ExportPlan({"a": _records("a", 1), "b": _records("b", 1)}, "settings-1"))

    def must_not_run():
        raise AssertionError("a complete file of the same settings was rewritten")

    dataset.save(ExportPlan({"a": must_not_run, "b": must_not_run}, "settings-1"))
    dataset.save(ExportPlan({"a": _records("new", 2)}, "settings-2"))
    assert _read_all(dataset.load()) == {"a.tfrecord.gz": _records("new", 2)}  # b was stale


def test_files_no_pattern_reads_are_listed_not_ignored(folder, data, caplog):
    TFRecordDataset(filepath=folder).save(data)
    for name in ("extra-00000.TFRecord.gz", "more.tfrec.gz"):
        (Path(folder) / name).write_bytes(b"")
    with caplog.at_level("WARNING"):
        files = TFRecordDataset(filepath=folder).load()
    assert len(files) == 3
    warned = " ".join(r.getMessage() for r in caplog.records if r.levelname == "WARNING")
    assert "2 files match no pattern" in warned
    assert "extra-00000.TFRecord.gz" in warned and "more.tfrec.gz" in warned


def test_the_next_save_removes_what_a_killed_run_left(folder, data, caplog):
    root = Path(folder)
    (root / "train").mkdir(parents=True)
    left = [root / ".patches-00003.tfrecord.gz.0badc0de.tmp", root / "train" / ".x.1234abcd.tmp"]
    for path in left:
        path.write_bytes(b"half a file")
    with caplog.at_level("WARNING"):
        TFRecordDataset(filepath=folder).save(data)
    assert not any(path.exists() for path in left)
    assert any("removed 2 temporary files" in r.getMessage() for r in caplog.records)
    assert len(TFRecordDataset(filepath=folder).load()) == 3
