"""TFRecordShardsDataset: numbering, summary, swap into place, clean failure."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest
from kedro.io.core import DatasetError

from dam_detection.datasets import tfrecord_shards
from dam_detection.datasets.export_plan import ExportPlan
from dam_detection.datasets.tfrecord_shards import SUMMARY_NAME, TFRecordShardsDataset


class WriteTask:
    """A picklable task: ``count`` records into each of ``files`` new files of ``group``."""

    def __init__(self, group: str, files: int, count: int, fail: bool = False) -> None:
        self.group, self.files, self.count, self.fail = group, files, count, fail

    def __call__(self, sink):
        for number in range(self.files):
            shard = sink.open(self.group)
            for index in range(self.count):
                shard.write(f"{self.group}:{number}:{index}".encode())
        if self.fail:
            raise RuntimeError("task failed")
        sink.open(self.group)  # opened and never written: not a shard
        return {"group": self.group}


def _records(dataset: TFRecordShardsDataset) -> dict[str, list[bytes]]:
    files = dataset.load()
    return {files.relative(p): list(files.iter_records(p)) for p in files.paths}


@pytest.mark.parametrize("start", ["fork", "spawn"])
def test_files_are_numbered_per_group_in_task_order(tmp_path: Path, monkeypatch, start):
    context = multiprocessing.get_context(start)
    monkeypatch.setattr(tfrecord_shards, "worker_context", lambda: context)
    dataset = TFRecordShardsDataset(filepath=str(tmp_path / "shards"), save_args={"workers": 2})
    dataset.save(_plan(WriteTask("train/shards", 2, 3), WriteTask("train/shards", 1, 2)))
    records = _records(dataset)
    assert list(records) == [f"train/shards-{n:05d}-of-00003.tfrecord.gz" for n in range(3)]
    assert records["train/shards-00002-of-00003.tfrecord.gz"] == [b"train/shards:0:0"] + [
        b"train/shards:0:1"
    ]
    summary = json.loads((tmp_path / "shards" / SUMMARY_NAME).read_text())
    assert summary["tasks"] == [{"group": "train/shards"}] * 2
    assert [f["records"] for f in summary["files"]] == [3, 3, 2]
    assert dataset.exists()


def _plan(*tasks: object) -> ExportPlan:
    return ExportPlan({f"task-{i}": task for i, task in enumerate(tasks)})


def test_a_new_save_replaces_the_old_set_whole(tmp_path: Path):
    dataset = TFRecordShardsDataset(filepath=str(tmp_path / "shards"))
    dataset.save(_plan(WriteTask("train/shards", 4, 1)))
    dataset.save(_plan(WriteTask("val/shards", 1, 1)))
    assert list(_records(dataset)) == ["val/shards-00000-of-00001.tfrecord.gz"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shards"]  # no staging left


def test_a_failing_task_leaves_the_previous_set_and_no_staging(tmp_path: Path):
    dataset = TFRecordShardsDataset(filepath=str(tmp_path / "shards"))
    dataset.save(_plan(WriteTask("train/shards", 1, 1)))
    with pytest.raises(DatasetError, match="task failed"):
        dataset.save(_plan(WriteTask("train/shards", 2, 2, fail=True)))
    assert list(_records(dataset)) == ["train/shards-00000-of-00001.tfrecord.gz"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shards"]


def test_missing_folder_and_bad_group_are_explained(tmp_path: Path):
    dataset = TFRecordShardsDataset(filepath=str(tmp_path / "none"))
    assert not dataset.exists()
    with pytest.raises(DatasetError, match="kedro run --pipelines shard_tfrecords"):
        dataset.load()
    with pytest.raises(DatasetError, match="invalid shard group"):
        dataset.save(_plan(WriteTask("../escape", 1, 1)))
    with pytest.raises(DatasetError, match="workers"):
        TFRecordShardsDataset(filepath=str(tmp_path), save_args={"workers": 0})


def test_staging_folders_of_a_killed_run_are_removed_by_the_next(tmp_path):
    staging = tmp_path / ".shards.0badc0de.tmp"
    retired = tmp_path / ".shards.1234abcd.old"
    neighbour = tmp_path / ".other.0badc0de.tmp"  # another dataset's: left alone
    for folder in (staging, retired, neighbour):
        (folder / "train").mkdir(parents=True)
        (folder / "train" / "part").write_bytes(b"x" * 100)
    dataset = TFRecordShardsDataset(filepath=str(tmp_path / "shards"))
    dataset.save(_plan(WriteTask("train/shards", 1, 1)))
    assert not staging.exists() and not retired.exists() and neighbour.exists()
