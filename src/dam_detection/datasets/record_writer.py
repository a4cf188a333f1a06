"""Atomic TFRecord file writing, serial or in worker processes, with progress logging.

Shared by :class:`~dam_detection.datasets.tfrecord_dataset.TFRecordDataset` and
:class:`~dam_detection.datasets.image_export_dataset.ImageExportDataset`. Every file is written
under a hidden temporary name in its destination folder and renamed into place when complete, so
a file that exists under its final name is always whole: a re-run may skip it.
"""

from __future__ import annotations

import gzip
import logging
import multiprocessing
import posixpath
import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any, BinaryIO, Literal

from dam_detection.progress import Progress
from dam_detection.tfrecord_codec import frame_record
from dam_detection.workers import die_with_parent, stop_executor

logger = logging.getLogger(__name__)

Compression = Literal["GZIP"] | None
#: A file's records, or a zero-argument callable producing them (run where the file is written).
RecordSource = Iterable[bytes] | Callable[[], Iterable[bytes]]


class RecordWriteError(RuntimeError):
    """A record producer failed while its file was written (names the file and the record)."""


def record_suffix(compression: Compression) -> str:
    """File name suffix for a compression: ``.tfrecord.gz`` for gzip, ``.tfrecord`` for none."""
    if compression not in ("GZIP", None):
        raise ValueError(f"compression must be 'GZIP' or null, got {compression!r}")
    return ".tfrecord.gz" if compression == "GZIP" else ".tfrecord"


def temporary_path(path: str) -> str:
    """A hidden sibling of ``path`` that file listings ignore (leading dot, ``.tmp`` suffix)."""
    folder, name = posixpath.split(path)
    return posixpath.join(folder, f".{name}.{uuid.uuid4().hex[:8]}.tmp")


#: What :func:`temporary_path` names, and the staging folders of the shards dataset.
LEFTOVER = re.compile(r"^\..+\.[0-9a-f]{8}\.(tmp|old)$")


def remove_leftovers(filesystem: Any, folder: str, label: str) -> int:
    """Remove temporary files and staging folders a killed run left under ``folder``.

    A run killed outright (SIGKILL, a lost machine) cannot clean up after itself; the next
    write to the same place does, so they do not pile up. One writer per folder at a time.

    Returns:
        How many were removed.
    """
    if not filesystem.exists(folder):
        return 0
    removed, size = 0, 0
    for path, info in filesystem.find(folder, withdirs=True, detail=True).items():
        if not LEFTOVER.match(posixpath.basename(path.rstrip("/"))) or not filesystem.exists(path):
            continue
        size += int(info.get("size") or 0)
        filesystem.rm(path, recursive=info.get("type") == "directory")
        removed += 1
    if removed:
        logger.warning(
            "%s: removed %d temporary files or folders (%.1f MB) that an interrupted run left",
            label,
            removed,
            size / 1e6,
        )
    return removed


def _open_compressed(raw: BinaryIO, compression: Compression, compresslevel: int) -> BinaryIO:
    if compression is None:
        return raw
    # filename="" and mtime=0 keep the gzip header free of names and clocks: same records, same
    # bytes, whatever the temporary file was called and whenever it was written.
    stream: Any = gzip.GzipFile(
        filename="", mode="wb", fileobj=raw, compresslevel=compresslevel, mtime=0
    )
    return stream  # a writable binary stream, which typing.BinaryIO does not name


def write_record_file(
    filesystem: Any,
    path: str,
    records: RecordSource,
    compression: Compression = "GZIP",
    compresslevel: int = 6,
) -> int:
    """Write one TFRecord file atomically (temporary name, then rename).

    Args:
        filesystem: fsspec filesystem.
        path: Final path of the file (protocol stripped).
        records: Serialized records, or a zero-argument callable returning them.
        compression: ``GZIP`` or ``None``.
        compresslevel: gzip level 1 (fast) to 9 (small).

    Returns:
        The number of records written.
    """
    filesystem.makedirs(posixpath.dirname(path) or ".", exist_ok=True)
    temporary = temporary_path(path)
    count = 0
    try:
        with filesystem.open(temporary, "wb") as raw:
            stream = _open_compressed(raw, compression, compresslevel)
            for record in records() if callable(records) else records:
                stream.write(frame_record(record))
                count += 1
            if stream is not raw:
                stream.close()
        filesystem.mv(temporary, path)
    except BaseException as error:
        if filesystem.exists(temporary):
            filesystem.rm(temporary)
        if isinstance(error, Exception):
            raise RecordWriteError(
                f"{path}: record {count} failed ({type(error).__name__}: {error}); nothing of "
                "this file was kept, files completed before it were, and a re-run with "
                "save_args.overwrite: false resumes after fixing the cause"
            ) from error
        raise
    return count


def write_bytes_atomic(filesystem: Any, path: str, content: bytes) -> None:
    """Write a small file (a mixer, a GeoJSON) atomically."""
    filesystem.makedirs(posixpath.dirname(path) or ".", exist_ok=True)
    temporary = temporary_path(path)
    try:
        with filesystem.open(temporary, "wb") as handle:
            handle.write(content)
        filesystem.mv(temporary, path)
    except BaseException:
        if filesystem.exists(temporary):
            filesystem.rm(temporary)
        raise


#: One file to write: final path, records, compression.
FileTarget = tuple[str, RecordSource, Compression]


def write_record_files(
    filesystem: Any,
    targets: Sequence[tuple[str, RecordSource]],
    *,
    compression: Compression = "GZIP",
    compresslevel: int = 6,
    workers: int = 1,
    label: str = "TFRecord files",
) -> tuple[int, int]:
    """Write many files, each atomically; in ``workers`` processes when > 1.

    Args:
        filesystem: fsspec filesystem (picklable when ``workers > 1``).
        targets: ``(final path, records)`` pairs.
        compression: ``GZIP`` or ``None``.
        compresslevel: gzip level.
        workers: Worker processes.
        label: Name used in progress lines.

    Returns:
        ``(files written, records written)``.
    """
    groups = [[(path, source, compression)] for path, source in targets]
    return write_record_groups(
        filesystem, groups, compresslevel=compresslevel, workers=workers, label=label
    )


def write_record_groups(
    filesystem: Any,
    groups: Sequence[Sequence[FileTarget]],
    *,
    compresslevel: int = 6,
    workers: int = 1,
    label: str = "TFRecord files",
) -> tuple[int, int]:
    """Write groups of files, each file atomically; each group in order, in one process.

    A group is the unit of parallel work: the files of one scene form one group, so the scene
    is rendered once, by the process that writes all its files. Groups run in ``workers``
    spawned processes when > 1 (spawned, not forked, so that a parent that has started
    TensorFlow's or Kedro's threads cannot deadlock them); producers that need this process
    (an Earth Engine session) come with ``workers=1`` (:meth:`ExportPlan.workers`).

    Args:
        filesystem: fsspec filesystem (picklable when ``workers > 1``).
        groups: Lists of ``(final path, records, compression)``.
        compresslevel: gzip level.
        workers: Worker processes.
        label: Name used in progress lines.

    Returns:
        ``(files written, records written)``.
    """
    progress = Progress(logger, label, sum(len(group) for group in groups), "files written")
    records = 0
    if workers > 1 and len(groups) > 1:
        context = multiprocessing.get_context("spawn")
        pool = ProcessPoolExecutor(
            min(workers, len(groups)), mp_context=context, initializer=die_with_parent
        )
        try:
            futures = [
                pool.submit(_write_group, filesystem, group, compresslevel) for group in groups
            ]
            for future in as_completed(futures):
                for count in future.result():
                    records += count
                    progress.update()
        except BaseException:
            stop_executor(pool)  # Ctrl-C or a failure: stop within seconds, not after the work
            raise
        pool.shutdown()
        return progress.done, records
    for group in groups:
        for count in _write_group(filesystem, group, compresslevel):
            records += count
            progress.update()
    return progress.done, records


def _write_group(filesystem: Any, group: Sequence[FileTarget], compresslevel: int) -> list[int]:
    return [
        write_record_file(filesystem, path, source, compression, compresslevel)
        for path, source, compression in group
    ]
