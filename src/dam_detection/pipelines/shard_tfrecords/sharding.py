"""One worker's streaming pass: read, check, account, shuffle, route to shards, accumulate stats.

A :class:`ShardTask` is built by a node (pure) and run by ``TFRecordShardsDataset.save`` in a
worker process, which hands it a sink to open shard files through. Each record is read once:

* input files are read interleaved, the next record drawn from a random one of up to
  ``interleave_files`` open files, so records of different files mix;
* a shuffle buffer of ``shuffle_buffer`` records mixes them further;
* each record goes to a random one of ``open_shards_per_split`` open shards of its split, and a
  shard is closed when it holds ``records_per_shard`` records.

Every random choice comes from a generator seeded with ``(seed, task_index)``, so the same
inputs, parameters and seed give byte-identical shards. Memory is bounded by the open files and
the shuffle buffer, not by the input size.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from dam_detection.bands import DEGREES_PER_PIXEL
from dam_detection.pipelines.shard_tfrecords.records import (
    NO_POINT_INDEX,
    CheckedRecord,
    RecordSpec,
    check_record,
)
from dam_detection.pipelines.shard_tfrecords.settings import SnapSettings
from dam_detection.pipelines.shard_tfrecords.snapping import snap_dam
from dam_detection.pipelines.shard_tfrecords.statistics import BandAccumulator
from dam_detection.progress import Progress
from dam_detection.tfrecord_codec import CorruptRecordError

if TYPE_CHECKING:
    from dam_detection.datasets.tfrecord_files import TFRecordFiles
    from dam_detection.datasets.tfrecord_shards import ShardFile, ShardSink

#: Shard file stem inside each split folder: ``<split>/shards-00000-of-00004.tfrecord.gz``.
SHARD_STEM = "shards"

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PointTable:
    """Point index to split and kind codes (-1: not in the table), and where the dams are.

    Attributes:
        lonlat: ``(N, 2)`` longitude and latitude per point index (NaN where absent).
        dam_indices: Point indices labelled 1 (dams), sorted by longitude (``dam_lon``).
    """

    split_codes: np.ndarray
    split_names: tuple[str, ...]
    kind_codes: np.ndarray
    kind_names: tuple[str, ...]
    lonlat: np.ndarray | None = None
    dam_indices: np.ndarray | None = None

    def other_dams(self, point_index: int, radius_px: int) -> np.ndarray:
        """``(K, 2)`` pixel offsets (row down, column right) of the other dams in the patch.

        Offsets are on Earth Engine's degree grid (``bands.DEGREES_PER_PIXEL``), where a patch
        spans ``radius_px`` pixels either side of its centre on both axes.
        """
        if (
            self.lonlat is None
            or self.dam_indices is None
            or not 0 <= point_index < len(self.lonlat)
        ):
            return np.zeros((0, 2), np.float32)
        here = self.lonlat[point_index]
        if not np.isfinite(here).all():
            return np.zeros((0, 2), np.float32)
        reach = radius_px * DEGREES_PER_PIXEL
        dams = self.lonlat[self.dam_indices]
        lon = dams[:, 0]
        first, last = np.searchsorted(lon, [here[0] - reach, here[0] + reach])
        nearby = self.dam_indices[first:last]
        delta = self.lonlat[nearby] - here
        inside = (np.abs(delta[:, 1]) <= reach) & (nearby != point_index)
        rows = -delta[inside, 1] / DEGREES_PER_PIXEL
        cols = delta[inside, 0] / DEGREES_PER_PIXEL
        return np.round(np.column_stack([rows, cols])).astype(np.float32)

    def lookup(self, point_index: int) -> tuple[str, str] | None:
        """``(split, kind)`` of a point, or ``None`` if the index is not in the table."""
        if not 0 <= point_index < self.split_codes.size or self.split_codes[point_index] < 0:
            return None
        split = self.split_names[self.split_codes[point_index]]
        return split, self.kind_names[self.kind_codes[point_index]]


@dataclass(frozen=True)
class ShardTask:
    """A worker's share of the input and everything it needs to process it.

    Attributes:
        task_index: Position among the tasks (seeds the generator, orders the shards).
        files: The loaded input file set (read lazily, in the worker).
        paths: This task's input files, in the order they are opened.
        spec: Record checks.
        points: Point index lookups.
        split_without_point_index: Split for records without a point index, or ``None`` to
            drop them (``missing_point_index``).
        stats_split: Split whose records feed the band statistics.
        records_per_shard: Records after which a shard is closed.
        open_shards_per_split: Shards of each split written at once by this task.
        interleave_files: Input files read at once.
        shuffle_buffer: Records held back to shuffle.
        seed: Base seed.
        snap: Re-centring of dam patches on their walls, or ``None``.
    """

    task_index: int
    files: TFRecordFiles
    paths: tuple[str, ...]
    spec: RecordSpec
    points: PointTable
    split_without_point_index: str | None
    stats_split: str
    records_per_shard: int
    open_shards_per_split: int
    interleave_files: int
    shuffle_buffer: int
    seed: int
    snap: SnapSettings | None = None

    def __call__(self, sink: ShardSink) -> dict[str, Any]:
        """Run the pass, writing through ``sink``; return the accounting and statistics."""
        return run_shard_task(self, sink)


class _Router:
    """Random shard choice among open shards per split, closing each when full."""

    def __init__(self, task: ShardTask, sink: ShardSink, rng: np.random.Generator) -> None:
        self._task, self._sink, self._rng = task, sink, rng
        self._open: dict[str, list[ShardFile | None]] = {}

    def write(self, split: str, record: bytes) -> None:
        slots = self._open.setdefault(split, [None] * self._task.open_shards_per_split)
        slot = int(self._rng.integers(len(slots)))
        shard = slots[slot]
        if shard is None:
            shard = slots[slot] = self._sink.open(f"{split}/{SHARD_STEM}")
        shard.write(record)
        if shard.records >= self._task.records_per_shard:
            shard.close()
            slots[slot] = None


def _new_file_entry(name: str) -> dict[str, Any]:
    return {"file": name, "read": 0, "kept": 0, "dropped": {}, "corrupt": None}


def run_shard_task(task: ShardTask, sink: ShardSink) -> dict[str, Any]:
    """Process ``task``'s input files once (see the module docstring).

    Returns:
        ``files``: per input file ``read``, ``kept``, ``dropped`` (reason to record positions),
        ``corrupt`` (the damaged tail: reason, record index, byte offset); ``kept_by_split``,
        ``kept_by_kind``; ``stats``: band accumulator states of ``stats_split``.
    """
    rng = np.random.default_rng([task.seed, task.task_index])
    router = _Router(task, sink, rng)
    stats = {band: BandAccumulator() for band in task.spec.bands}
    kept_by_split: Counter[str] = Counter()
    kept_by_kind: Counter[str] = Counter()
    buffer: list[tuple[str, bytes]] = []
    entries = [_new_file_entry(task.files.relative(path)) for path in task.paths]
    pending = list(range(len(task.paths)))[::-1]  # popped from the end: file order
    readers: list[tuple[int, Any]] = []
    snapped: list[float | None] = []  # per dam patch: how far it moved (pixels), or not found

    def drop(entry: dict[str, Any], index: int, reason: str) -> None:
        entry["dropped"].setdefault(reason, []).append(index)

    label = f"shard_tfrecords task {task.task_index}"
    progress = Progress(logger, label, len(task.paths), "input files read")

    while readers or pending:
        while pending and len(readers) < task.interleave_files:
            number = pending.pop()
            readers.append((number, task.files.iter_records(task.paths[number])))
        choice = int(rng.integers(len(readers)))
        number, reader = readers[choice]
        entry = entries[number]
        try:
            data = next(reader)
        except StopIteration:
            readers.pop(choice)
            progress.update()
            continue
        except CorruptRecordError as error:
            # Everything before the damage was read; the damaged record counts as read and
            # dropped, and nothing after it can be found.
            readers.pop(choice)
            progress.update()
            entry["read"] += 1
            drop(entry, error.record_index, error.reason)
            entry["corrupt"] = {
                "reason": error.reason,
                "record_index": error.record_index,
                "offset": error.offset,
            }
            continue
        index = entry["read"]
        entry["read"] += 1
        checked = check_record(data, task.spec)
        if isinstance(checked, str):
            drop(entry, index, checked)
            continue
        place = _place(checked, task)
        if isinstance(place, str):
            drop(entry, index, place)
            continue
        split, kind = place
        moved_by = (0, 0)
        if task.snap is not None and checked.label == 1.0:
            checked, shift, moved_by = _snap(checked, task)
            snapped.append(shift)
        others = task.points.other_dams(checked.point_index, task.spec.radius)
        if len(others):  # relative to the (re-centred) centre
            checked = replace(checked, other_dams=others - np.asarray(moved_by, np.float32))
        entry["kept"] += 1
        kept_by_split[split] += 1
        kept_by_kind[kind] += 1
        if split == task.stats_split:
            for band, values in checked.bands.items():
                stats[band].add(values, *checked.band_ranges[band])
        item = (split, checked.serialize())
        if len(buffer) < task.shuffle_buffer:
            buffer.append(item)
            continue
        if buffer:
            slot = int(rng.integers(len(buffer)))
            buffer[slot], item = item, buffer[slot]
        router.write(*item)
    for position in rng.permutation(len(buffer)):
        router.write(*buffer[position])
    return {
        "task": task.task_index,
        "files": entries,
        "kept_by_split": dict(kept_by_split),
        "kept_by_kind": dict(kept_by_kind),
        "stats_split": task.stats_split,
        "stats": {band: accumulator.to_json() for band, accumulator in stats.items()},
        "snapped": snapped,
    }


def _snap(
    checked: CheckedRecord, task: ShardTask
) -> tuple[CheckedRecord, float | None, tuple[int, int]]:
    """The dam record re-centred on its wall, how far it moved (``None``: not found), and the
    shift in pixels.
    """
    assert task.snap is not None
    size = int(round(np.sqrt(task.spec.num_values)))
    bands, result = snap_dam(checked.bands, size, task.snap.max_shift_px, task.snap.min_drop_m)
    if result.shift is None:
        return checked, None, (0, 0)
    ranges = {band: (float(v.min()), float(v.max())) for band, v in bands.items()}
    moved = replace(checked, bands=bands, band_ranges=ranges)
    return moved, float(np.hypot(*result.shift)), result.shift


def _place(checked: CheckedRecord, task: ShardTask) -> tuple[str, str] | str:
    """``(split, kind)`` of a checked record, or the reason it cannot be placed."""
    if checked.point_index == NO_POINT_INDEX:
        if task.split_without_point_index is None:
            return "missing_point_index"
        return task.split_without_point_index, "unknown"
    found = task.points.lookup(checked.point_index)
    return "unknown_point_index" if found is None else found
