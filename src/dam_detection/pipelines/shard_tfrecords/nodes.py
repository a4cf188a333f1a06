"""Nodes of ``shard_tfrecords``: plan the streaming pass, then summarise what it did.

The pass itself (read, check, shuffle, write, accumulate) runs inside the ``shards`` dataset's
save, in worker processes, as the :class:`~.sharding.ShardTask` objects planned here; the
dataset keeps the pass's accounting and statistics with the shards and loads them back as
``shards.summary``, from which the second node writes ``band_stats`` and ``shard_report``
without reading a record again.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from dam_detection.bands import LABEL_KEY
from dam_detection.datasets.export_plan import ExportPlan
from dam_detection.datasets.tfrecord_files import TFRecordFiles
from dam_detection.pipelines.shard_tfrecords.acceptance import accept_pass
from dam_detection.pipelines.shard_tfrecords.records import DROP_REASONS, RecordSpec, reason_kind
from dam_detection.pipelines.shard_tfrecords.settings import ShardSettings
from dam_detection.pipelines.shard_tfrecords.sharding import PointTable, ShardTask
from dam_detection.pipelines.shard_tfrecords.statistics import merge_band_states


def build_point_table(points: pd.DataFrame) -> PointTable:
    """Dense lookups from ``point_index`` to split and kind.

    Args:
        points: The points table (columns ``point_index``, ``split``, ``kind``).

    Returns:
        The lookup table.

    Raises:
        ValueError: If a column is missing or an index is negative or repeated.
    """
    missing = [c for c in ("point_index", "split", "kind") if c not in points.columns]
    if missing:
        raise ValueError(f"points table lacks columns {missing}: re-run ingest_points")
    indices = points["point_index"].to_numpy(dtype=np.int64)
    if indices.size and (indices.min() < 0 or np.unique(indices).size != indices.size):
        raise ValueError("points.point_index must be unique and >= 0: re-run ingest_points")
    size = int(indices.max()) + 1 if indices.size else 0
    codes: dict[str, tuple[np.ndarray, tuple[str, ...]]] = {}
    for column in ("split", "kind"):
        names, inverse = np.unique(points[column].astype(str).to_numpy(), return_inverse=True)
        table = np.full(size, -1, dtype=np.int16)
        table[indices] = inverse
        codes[column] = (table, tuple(str(n) for n in names))
    lonlat = np.full((size, 2), np.nan)
    dams = np.zeros(0, np.int64)
    if "geometry" in points.columns and indices.size:
        geometry = gpd.GeoSeries(points.geometry)
        if geometry.crs is not None and not geometry.crs.equals("EPSG:4326"):
            geometry = geometry.to_crs("EPSG:4326")
        lonlat[indices] = np.column_stack([geometry.x.to_numpy(), geometry.y.to_numpy()])
        labelled = points["label"].to_numpy() if "label" in points.columns else None
        if labelled is not None:
            dams = indices[labelled == 1]
            dams = dams[np.argsort(lonlat[dams, 0], kind="stable")]
    return PointTable(*codes["split"], *codes["kind"], lonlat=lonlat, dam_indices=dams)


def plan_shard_tasks(
    patches: TFRecordFiles,
    points: pd.DataFrame,
    bands: Sequence[str],
    patch_radius: int,
    seed: int,
    settings: ShardSettings,
) -> ExportPlan[ShardTask]:
    """Split the input files into tasks for the ``shards`` dataset to run.

    Files are put in a seeded random order and dealt round-robin to
    ``min(tasks, files)`` tasks; the shards therefore depend on the seed, the input and
    ``tasks``, never on how many processes run them.

    Args:
        patches: The patch TFRecord files (``patches``).
        points: The points table (``points``).
        bands: ``params:bands``.
        patch_radius: ``params:patch_radius``.
        seed: ``params:seed``.
        settings: ``params:shard_tfrecords``.

    Returns:
        The plan for the ``shards`` dataset: one :class:`ShardTask` per worker share, in task
        order, and the check that refuses a pass dropping more than ``max_drop_share``
        (:func:`~.acceptance.accept_pass`) before it replaces the previous shards.
    """
    spec = RecordSpec.from_params(bands, patch_radius, settings.label_keys)
    table = build_point_table(points)
    missing_policy = settings.records_without_point_index
    if missing_policy != "drop" and missing_policy not in table.split_names:
        raise ValueError(
            "shard_tfrecords.records_without_point_index must be 'drop' or a split of the "
            f"points table {list(table.split_names)}, got {missing_policy!r}"
        )
    order = np.random.default_rng(int(seed)).permutation(len(patches.paths))
    count = max(1, min(settings.tasks, len(order)))
    tasks = [
        ShardTask(
            task_index=task,
            files=patches,
            paths=tuple(patches.paths[i] for i in order[task::count]),
            spec=spec,
            points=table,
            split_without_point_index=None if missing_policy == "drop" else missing_policy,
            stats_split=settings.stats_split,
            records_per_shard=settings.records_per_shard,
            open_shards_per_split=math.ceil(settings.min_shards_per_split / count),
            interleave_files=settings.interleave_files,
            shuffle_buffer=settings.shuffle_buffer,
            seed=int(seed),
            snap=settings.snap_dams if settings.snap_dams.enabled else None,
        )
        for task in range(count)
    ]
    return ExportPlan(
        {f"task-{task:05d}": shard_task for task, shard_task in enumerate(tasks)},
        check=partial(accept_pass, max_drop_share=settings.max_drop_share),
    )


def summarize_shards(
    shards: TFRecordFiles, bands: Sequence[str], patch_radius: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Band statistics and the quality report, from the summary the ``shards`` dataset loads
    with the shards.

    Args:
        shards: The written shards and their pass's summary.
        bands: ``params:bands``.
        patch_radius: ``params:patch_radius`` (recorded with the statistics, so that ``train``
            and ``segment`` can say plainly when they expect other shards).

    Returns:
        ``(band_stats, shard_report)``; see ``docs/shard_tfrecords.md``.

    Raises:
        ValueError: If the summary does not describe the shards on disk, or records are
            unaccounted for.
    """
    shard_summary = shards.summary
    if shard_summary is None:
        raise ValueError(
            f"the shards under {shards.root} come without the summary of the pass that wrote "
            "them: re-run shard_tfrecords"
        )
    tasks = shard_summary["tasks"]
    listed = sorted(file["path"] for file in shard_summary["files"])
    on_disk = sorted(shards.relative(path) for path in shards.paths)
    if listed != on_disk:
        raise ValueError(
            "shard_summary does not list the shards on disk; re-run shard_tfrecords "
            f"(summary: {len(listed)} files, folder: {len(on_disk)})"
        )
    files = sorted((entry for task in tasks for entry in task["files"]), key=lambda e: e["file"])
    rows, by_reason = _file_rows(files)
    kept_by_split = _sum_counters(task["kept_by_split"] for task in tasks)
    shard_counts = _shard_counts(shard_summary["files"])
    if {s: c["records"] for s, c in shard_counts.items()} != kept_by_split:
        raise ValueError("records in shards differ from records kept; this is a bug")
    stats_split = tasks[0]["stats_split"] if tasks else "train"
    merged = merge_band_states([task["stats"] for task in tasks], list(bands))
    band_stats = {
        "split": stats_split,
        "bands": {band: merged[band].summary() for band in bands},
        "records": int(kept_by_split.get(stats_split, 0)),
        # What the shards hold, for the readers to compare with what they expect.
        "band_order": list(bands),
        "patch_size_px": 2 * int(patch_radius) + 1,
        "label_key": LABEL_KEY,
    }
    read = sum(entry["read"] for entry in files)
    kept = sum(entry["kept"] for entry in files)
    report = {
        "totals": {
            "files": len(files),
            "read": read,
            "kept": kept,
            "dropped": read - kept,
            "corrupt_files": sum(1 for entry in files if entry["corrupt"]),
        },
        "dropped_by_reason": {r: by_reason[r] for r in sorted(by_reason, key=_reason_order)},
        "kept_by_split": dict(sorted(kept_by_split.items())),
        "kept_by_kind": dict(sorted(_sum_counters(t["kept_by_kind"] for t in tasks).items())),
        "shards": dict(sorted(shard_counts.items())),
        "dams_snapped": _snap_summary([t.get("snapped", []) for t in tasks]),
        "files": rows,
        "shard_files": sorted(shard_summary["files"], key=lambda f: f["path"]),
    }
    return band_stats, report


def _snap_summary(per_task: Sequence[Sequence[float | None]]) -> dict[str, Any]:
    """How many dam patches were re-centred on a wall, and how far they moved (pixels)."""
    shifts = [shift for task in per_task for shift in task]
    moved = np.array([shift for shift in shifts if shift is not None], dtype=np.float64)
    summary: dict[str, Any] = {
        "dam_patches": len(shifts),
        "recentred": int(moved.size),
        "wall_not_found": len(shifts) - int(moved.size),
    }
    if moved.size:
        q = np.quantile(moved, [0.5, 0.9, 1.0])
        summary["shift_px"] = {"p50": round(float(q[0]), 1), "p90": round(float(q[1]), 1),
                               "max": round(float(q[2]), 1)}  # fmt: skip
    return summary


def _file_rows(
    files: Sequence[Mapping[str, Any]],
) -> tuple[list[dict[str, Any]], Counter[str]]:
    """One report row per input file, and the drops of all files by reason.

    Raises:
        ValueError: If a file's records are not all kept or dropped (a bug).
    """
    by_reason: Counter[str] = Counter()
    rows = []
    for entry in files:
        dropped = {reason: len(positions) for reason, positions in entry["dropped"].items()}
        if entry["kept"] + sum(dropped.values()) != entry["read"]:
            raise ValueError(f"{entry['file']}: kept + dropped != read; this is a bug")
        by_reason.update(dropped)
        rows.append({**entry, "dropped_count": sum(dropped.values()), "dropped_by_reason": dropped})
    return rows, by_reason


def _shard_counts(shard_files: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, int]]:
    """Files and records per split, from the shards' listing."""
    counts: dict[str, dict[str, int]] = {}
    for file in shard_files:
        split = counts.setdefault(file["path"].split("/")[0], {"files": 0, "records": 0})
        split["files"] += 1
        split["records"] += int(file["records"])
    return counts


def _sum_counters(counters: Any) -> dict[str, int]:
    total: Counter[str] = Counter()
    for counter in counters:
        total.update(counter)
    return dict(total)


def _reason_order(reason: str) -> tuple[int, str]:
    kind = reason_kind(reason)
    return (DROP_REASONS.index(kind) if kind in DROP_REASONS else len(DROP_REASONS), reason)
