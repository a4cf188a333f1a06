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
import pickle
import posixpath
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import ExitStack
from typing import Any, BinaryIO, Literal

from dam_detection.tfrecord_codec import frame_record

logger = logging.getLogger(__name__)

Compression = Literal["GZIP"] | None
#: A file's records, or a zero-argument callable producing them (run where the file is written).
RecordSource = Iterable[bytes] | Callable[[], Iterable[bytes]]


class RecordWriteError(RuntimeError):
    """A record producer failed while its file was written (names the file and the record)."""


#: Seconds between progress lines during long writes.
PROGRESS_INTERVAL_S = 10.0


def record_suffix(compression: Compression) -> str:
    """File name suffix for a compression: ``.tfrecord.gz`` for gzip, ``.tfrecord`` for none."""
    if compression not in ("GZIP", None):
        raise ValueError(f"compression must be 'GZIP' or null, got {compression!r}")
    return ".tfrecord.gz" if compression == "GZIP" else ".tfrecord"


def temporary_path(path: str) -> str:
    """A hidden sibling of ``path`` that file listings ignore (leading dot, ``.tmp`` suffix)."""
    folder, name = posixpath.split(path)
    return posixpath.join(folder, f".{name}.{uuid.uuid4().hex[:8]}.tmp")


def _open_compressed(raw: BinaryIO, compression: Compression, compresslevel: int) -> BinaryIO:
    if compression is None:
        return raw
    # filename="" and mtime=0 keep the gzip header free of names and clocks: same records, same
    # bytes, whatever the temporary file was called and whenever it was written.
    return gzip.GzipFile(  # type: ignore[return-value]
        filename="", mode="wb", fileobj=raw, compresslevel=compresslevel, mtime=0
    )


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


class _Progress:
    """Logs ``files done / total, records`` at most every :data:`PROGRESS_INTERVAL_S`."""

    def __init__(self, label: str, total: int) -> None:
        self.label, self.total = label, total
        self.files = self.records = 0
        self.start = self.last = time.monotonic()

    def update(self, records: int) -> None:
        self.files += 1
        self.records += records
        now = time.monotonic()
        if now - self.last >= PROGRESS_INTERVAL_S or self.files == self.total:
            self.last = now
            logger.info(
                "%s: %d/%d files written, %d records, %.1f s",
                self.label,
                self.files,
                self.total,
                self.records,
                now - self.start,
            )


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
    TensorFlow's or Kedro's threads cannot deadlock them). Groups that cannot be pickled (an
    Earth Engine task closure, a generator) are written in this process.

    Args:
        filesystem: fsspec filesystem (picklable when ``workers > 1``).
        groups: Lists of ``(final path, records, compression)``.
        compresslevel: gzip level.
        workers: Worker processes.
        label: Name used in progress lines.

    Returns:
        ``(files written, records written)``.
    """
    progress = _Progress(label, sum(len(group) for group in groups))
    parallel, serial = _split_picklable(groups) if workers > 1 else ([], list(groups))
    if len(parallel) > 1:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(min(workers, len(parallel)), mp_context=context) as pool:
            futures = [
                pool.submit(_write_pickled_group, filesystem, payload, compresslevel)
                for payload in parallel
            ]
            for future in as_completed(futures):
                for count in future.result():
                    progress.update(count)
    else:
        serial = list(groups)
    for group in serial:
        for count in _write_group(filesystem, group, compresslevel):
            progress.update(count)
    return progress.files, progress.records


def _write_group(filesystem: Any, group: Sequence[FileTarget], compresslevel: int) -> list[int]:
    return [
        write_record_file(filesystem, path, source, compression, compresslevel)
        for path, source, compression in group
    ]


def _split_picklable(
    groups: Sequence[Sequence[FileTarget]],
) -> tuple[list[bytes], list[Sequence[FileTarget]]]:
    parallel, serial = [], []
    for group in groups:
        try:
            parallel.append(pickle.dumps(list(group)))
        except (pickle.PicklingError, TypeError, AttributeError):
            serial.append(group)
    if serial and parallel:
        logger.info("%d groups of files cannot be pickled: written in this process", len(serial))
    return parallel, serial


def _write_pickled_group(filesystem: Any, payload: bytes, compresslevel: int) -> list[int]:
    return _write_group(filesystem, pickle.loads(payload), compresslevel)


def write_routed_records(
    filesystem: Any,
    pairs: Iterable[tuple[str, bytes]],
    path_of: Callable[[str], str],
    *,
    skip: Callable[[str], bool] = lambda path: False,
    compression: Compression = "GZIP",
    compresslevel: int = 6,
    label: str = "TFRecord files",
) -> tuple[int, int]:
    """Stream ``(stem, record)`` pairs into several files open at once, renamed at the end.

    Args:
        filesystem: fsspec filesystem.
        pairs: Records tagged with the stem of the file they belong to, in any interleaving.
        path_of: Final path of a stem's file.
        skip: Whether a final path is already complete (its records are then dropped).
        compression: ``GZIP`` or ``None``.
        compresslevel: gzip level.
        label: Name used in progress lines.

    Returns:
        ``(files written, records written)``.
    """
    temporaries: dict[str, str] = {}
    streams: dict[str, BinaryIO] = {}
    counts: dict[str, int] = {}
    skipped: set[str] = set()
    started, last = time.monotonic(), time.monotonic()
    with ExitStack() as stack:
        try:
            for stem, record in pairs:
                if stem in skipped:
                    continue
                if stem not in streams:
                    path = path_of(stem)
                    if skip(path):
                        skipped.add(stem)
                        continue
                    filesystem.makedirs(posixpath.dirname(path) or ".", exist_ok=True)
                    temporaries[stem] = temporary_path(path)
                    raw = stack.enter_context(filesystem.open(temporaries[stem], "wb"))
                    stream = _open_compressed(raw, compression, compresslevel)
                    if stream is not raw:
                        stack.enter_context(stream)  # closed (gzip trailer) before its file
                    streams[stem], counts[stem] = stream, 0
                streams[stem].write(frame_record(record))
                counts[stem] += 1
                if time.monotonic() - last >= PROGRESS_INTERVAL_S:
                    last = time.monotonic()
                    logger.info(
                        "%s: %d files open, %d records, %.1f s",
                        label,
                        len(streams),
                        sum(counts.values()),
                        last - started,
                    )
        except BaseException:
            stack.close()
            for temporary in temporaries.values():
                if filesystem.exists(temporary):
                    filesystem.rm(temporary)
            raise
    for stem, temporary in temporaries.items():
        filesystem.mv(temporary, path_of(stem))
    logger.info(
        "%s: %d files written (%d skipped as complete), %d records, %.1f s",
        label,
        len(temporaries),
        len(skipped),
        sum(counts.values()),
        time.monotonic() - started,
    )
    return len(temporaries), sum(counts.values())
