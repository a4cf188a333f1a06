"""``TFRecordShardsDataset``: shards written in one streaming pass by tasks in worker processes.

``TFRecordDataset`` writes one file per producer. Sharding needs the opposite: one pass over
the input in which every worker routes each record to one of many files open at once, and side
results of that same pass (statistics, accounting) that must not cost a second read. So saving
takes *tasks*: picklable callables that receive a :class:`ShardSink`, open files of named groups
(e.g. ``train/shards``) through it, write records and return a JSON-able summary. Files are
numbered per group only when every task is done (``train/shards-00003-of-00012.tfrecord.gz``,
ordered by task then by opening order, so the result does not depend on process timing), and
the summaries land next to them in ``_summary.json``.

Everything is written into a hidden staging folder beside the target and swapped into place at
the end: readers see the old complete set or the new complete set, never a mixture.
"""

from __future__ import annotations

import copy
import dataclasses
import gzip
import json
import multiprocessing
import posixpath
import sys
import threading
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from typing import Any, BinaryIO

import fsspec
from kedro.io.core import AbstractDataset, DatasetError

from dam_detection.datasets.export_plan import ExportPlan
from dam_detection.datasets.record_writer import LEFTOVER
from dam_detection.datasets.tfrecord_files import TFRecordFiles, list_tfrecord_files
from dam_detection.tfrecord_codec import frame_record
from dam_detection.workers import die_with_parent, stop_executor

#: File next to the shards holding the task summaries and the list of shards.
SUMMARY_NAME = "_summary.json"
SHARD_SUFFIX = ".tfrecord.gz"


class ShardFile:
    """One output file open in a task; ``records`` counts what was written to it."""

    def __init__(self, filesystem: Any, path: str, group: str, compresslevel: int) -> None:
        self.group, self.path, self.records = group, path, 0
        self._raw: BinaryIO = filesystem.open(path, "wb")
        # mtime=0 and no file name: the same records always give the same bytes.
        self._stream = gzip.GzipFile(
            filename="", mode="wb", fileobj=self._raw, compresslevel=compresslevel, mtime=0
        )

    def write(self, record: bytes) -> None:
        """Append one serialized record."""
        self._stream.write(frame_record(record))
        self.records += 1

    def close(self) -> None:
        """Finish the gzip stream and the file (idempotent)."""
        if not self._raw.closed:
            self._stream.close()
            self._raw.close()


class ShardSink:
    """Where one task writes: files of named groups, under the staging folder.

    Args:
        filesystem: fsspec filesystem of the target.
        staging: Staging folder (protocol stripped).
        task_index: Position of the task, used in temporary names and in the final order.
        compresslevel: gzip level 1-9.
    """

    def __init__(self, filesystem: Any, staging: str, task_index: int, compresslevel: int) -> None:
        self._fs, self._staging = filesystem, staging
        self._task, self._compresslevel = task_index, compresslevel
        self.files: list[ShardFile] = []

    def open(self, group: str) -> ShardFile:
        """Open a new file of ``group`` (e.g. ``train/shards``); close it when it is full."""
        group = _checked_group(group)
        path = posixpath.join(
            self._staging, f"{group}.task{self._task:05d}-{len(self.files):05d}.part"
        )
        self._fs.makedirs(posixpath.dirname(path), exist_ok=True)
        shard = ShardFile(self._fs, path, group, self._compresslevel)
        self.files.append(shard)
        return shard

    def close(self) -> list[dict[str, Any]]:
        """Close every file; return ``{"group", "path", "records"}`` for each, in opening order."""
        for shard in self.files:
            shard.close()
        return [{"group": f.group, "path": f.path, "records": f.records} for f in self.files]


#: A unit of work: writes through the sink, returns a JSON-able summary.
ShardTask = Callable[[ShardSink], Mapping[str, Any]]


def _checked_group(group: str) -> str:
    group = group.strip("/")
    if not group or ".." in group.split("/") or posixpath.basename(group).startswith("."):
        raise DatasetError(f"invalid shard group {group!r}: use e.g. 'train/shards'")
    return group


def worker_context() -> multiprocessing.context.BaseContext:
    """Fork where that is safe (Linux, no other thread running), else spawn.

    Forked workers start at once with the parent's imports; spawned ones re-import the project
    (about a second each). With another thread alive (TensorFlow, an async save) a fork could
    copy a lock that thread holds, so those parents spawn.
    """
    if sys.platform == "linux" and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def run_task(
    task: ShardTask, filesystem: Any, staging: str, task_index: int, compresslevel: int
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Run one task with its own sink (in a worker process or here).

    Returns:
        ``(task summary, files written)``.
    """
    sink = ShardSink(filesystem, staging, task_index, compresslevel)
    try:
        summary = dict(task(sink))
    finally:
        files = sink.close()
    return summary, files


class TFRecordShardsDataset(AbstractDataset[ExportPlan[ShardTask], TFRecordFiles]):
    """Gzip TFRecord shards written by streaming tasks; loads like ``TFRecordDataset``.

    Examples:
        ```yaml
        shards:
          type: dam_detection.datasets.tfrecord_shards.TFRecordShardsDataset
          filepath: data/05_model_input/shards/
          save_args:
            workers: 2
            compresslevel: 6
        ```

        >>> def task(sink):
        ...     shard = sink.open("train/shards")
        ...     shard.write(b"record")
        ...     return {"written": 1}
        >>> dataset = TFRecordShardsDataset(filepath=str(tmp_path / "shards"))
        >>> dataset.save(ExportPlan({"task-0": task}))
        >>> [dataset.load().relative(p) for p in dataset.load().paths]
        ['train/shards-00000-of-00001.tfrecord.gz']
    """

    DEFAULT_LOAD_ARGS: dict[str, Any] = {"pattern": "**/*.tfrecord*"}
    DEFAULT_SAVE_ARGS: dict[str, Any] = {"compresslevel": 6, "workers": 1}

    def __init__(  # noqa: PLR0913
        self,
        *,
        filepath: str,
        load_args: dict[str, Any] | None = None,
        save_args: dict[str, Any] | None = None,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Creates a new instance of ``TFRecordShardsDataset``.

        Args:
            filepath: Folder, optionally with an fsspec protocol (``gs://bucket/shards``).
            load_args: ``pattern``: glob of the files under the folder (``**/*.tfrecord*``).
            save_args: ``compresslevel`` (gzip 1-9, default 6), ``workers`` (processes that
                run the tasks, default 1).
            credentials: Passed to the fsspec filesystem.
            fs_args: Extra arguments of the fsspec filesystem constructor.
            metadata: Any arbitrary metadata, ignored by Kedro.
        """
        _fs_args = copy.deepcopy(fs_args) or {}
        self._protocol = fsspec.utils.get_protocol(filepath)
        self._fs = fsspec.filesystem(self._protocol, **(credentials or {}), **_fs_args)
        self._filepath = filepath
        self._root = self._fs._strip_protocol(filepath).rstrip("/")
        self._load_args = {**self.DEFAULT_LOAD_ARGS, **(load_args or {})}
        self._save_args = {**self.DEFAULT_SAVE_ARGS, **(save_args or {})}
        self.metadata = metadata
        if int(self._save_args["workers"]) < 1:
            raise DatasetError(f"{filepath}: save_args.workers must be >= 1")

    @property
    def root(self) -> str:
        """The folder, with its protocol."""
        local = self._protocol in ("file", "local")
        return self._root if local else f"{self._protocol}://{self._root}"

    def load(self) -> TFRecordFiles:
        """List the shards (sorted by name), with the summary of the pass that wrote them
        (``TFRecordFiles.summary``; ``None`` for shards not written by ``save``); records are
        read when iterated.

        A folder written by ``save`` in which every record was dropped loads as an empty set.

        Raises:
            DatasetError: If the folder holds neither shards nor a summary.
        """
        files = list_tfrecord_files(self.root, self._load_args["pattern"], filesystem=self._fs)
        summary_path = posixpath.join(self._root, SUMMARY_NAME)
        written = self._fs.exists(summary_path)
        if not len(files) and not written:
            raise DatasetError(
                f"{self._filepath} has no shards. Create them with "
                "kedro run --pipelines shard_tfrecords."
            )
        # Shards copied in from elsewhere train as well; only their report needs the summary.
        summary = json.loads(self._fs.cat_file(summary_path)) if written else None
        return dataclasses.replace(files, summary=summary)

    def save(self, data: ExportPlan[ShardTask]) -> None:
        """Run the planned tasks, let the plan's ``check`` judge their summaries, number the
        files per group, write ``_summary.json`` and swap the result in place.

        Raises:
            Whatever the plan's ``check`` raises: then the staged files are removed and the
            previous shards stay as they were.
        """
        if not isinstance(data, ExportPlan):
            raise DatasetError(
                f"TFRecordShardsDataset({self._filepath}) saves an ExportPlan of shard tasks, got "
                f"{type(data).__name__}"
            )
        tasks = list(data.items.values())
        parent, name = posixpath.split(self._root)
        self._remove_staging_leftovers(parent, name)
        staging = posixpath.join(parent, f".{name}.{uuid.uuid4().hex[:8]}.tmp")
        self._fs.makedirs(staging, exist_ok=True)
        try:
            results = self._run(tasks, staging, data.workers(int(self._save_args["workers"])))
            if data.check is not None:
                data.check([summary for summary, _ in results])
            listing = self._number_files(staging, [files for _, files in results])
            summary = {"tasks": [summary for summary, _ in results], "files": listing}
            with self._fs.open(posixpath.join(staging, SUMMARY_NAME), "w") as handle:
                json.dump(summary, handle, indent=1)
            self._swap_in(staging)
        except BaseException:
            if self._fs.exists(staging):
                self._fs.rm(staging, recursive=True)
            raise
        self._fs.invalidate_cache(self._root)

    def _remove_staging_leftovers(self, parent: str, name: str) -> None:
        # Staging (``.shards.<id>.tmp``) and retired (``.shards.<id>.old``) folders of a run
        # that was killed before it could clean up: only this dataset's, never its neighbours'.
        if not self._fs.exists(parent):
            return
        for path in self._fs.ls(parent, detail=False):
            base = posixpath.basename(path.rstrip("/"))
            if base.startswith(f".{name}.") and LEFTOVER.match(base):
                self._logger.warning(
                    "%s: removing %s, left by an interrupted run", self._filepath, base
                )
                self._fs.rm(path, recursive=True)

    def _run(
        self, tasks: list[ShardTask], staging: str, workers: int
    ) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
        level = int(self._save_args["compresslevel"])
        if workers == 1 or len(tasks) < 2 or self._protocol == "memory":
            return [run_task(task, self._fs, staging, i, level) for i, task in enumerate(tasks)]
        context = worker_context()
        pool = ProcessPoolExecutor(
            min(workers, len(tasks)), mp_context=context, initializer=die_with_parent
        )
        try:
            futures = [
                pool.submit(run_task, task, self._fs, staging, i, level)
                for i, task in enumerate(tasks)
            ]
            results = [future.result() for future in futures]
        except BaseException:
            stop_executor(pool)  # Ctrl-C or a failure: stop within seconds, not after the work
            raise
        pool.shutdown()
        return results

    def _number_files(
        self, staging: str, files_per_task: list[list[dict[str, Any]]]
    ) -> list[dict[str, Any]]:
        groups: dict[str, list[dict[str, Any]]] = {}
        for task_index, files in enumerate(files_per_task):
            for file in files:
                if file["records"] == 0:
                    self._fs.rm(file["path"])  # opened, never used: not a shard
                else:
                    groups.setdefault(file["group"], []).append({**file, "task": task_index})
        listing = []
        for group in sorted(groups):
            total = len(groups[group])
            for number, file in enumerate(groups[group]):
                relative = f"{group}-{number:05d}-of-{total:05d}{SHARD_SUFFIX}"
                self._fs.mv(file["path"], posixpath.join(staging, relative))
                listing.append({"path": relative, "records": file["records"], "task": file["task"]})
        return listing

    def _swap_in(self, staging: str) -> None:
        if not self._fs.exists(self._root):
            self._fs.mv(staging, self._root, recursive=True)
            return
        parent, name = posixpath.split(self._root)
        retired = posixpath.join(parent, f".{name}.{uuid.uuid4().hex[:8]}.old")
        self._fs.mv(self._root, retired, recursive=True)
        self._fs.mv(staging, self._root, recursive=True)
        self._fs.rm(retired, recursive=True)

    def _exists(self) -> bool:
        return bool(
            len(list_tfrecord_files(self.root, self._load_args["pattern"], filesystem=self._fs))
        )

    def _describe(self) -> dict[str, Any]:
        return {
            "filepath": self._filepath,
            "protocol": self._protocol,
            "load_args": self._load_args,
            "save_args": self._save_args,
        }

    def _release(self) -> None:
        super()._release()
        self._fs.invalidate_cache(self._root)
