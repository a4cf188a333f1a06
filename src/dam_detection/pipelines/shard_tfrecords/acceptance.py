"""Whether a sharding pass may replace the shards there are: it must keep enough of its input.

A pass that keeps nothing, or drops more than ``shard_tfrecords.max_drop_share`` of the records
it read, almost always means the settings do not match the exports (another band list, another
patch radius). It fails before the new shards are swapped in, naming the top drop reasons and
what to change, and the previous shards and statistics stay as they were.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from dam_detection.pipelines.shard_tfrecords.records import reason_kind

logger = logging.getLogger(__name__)

#: Drop reasons shown in a failure message.
TOP_REASONS = 3


class ShardPassError(ValueError):
    """The pass kept too little of its input; the previous shards are untouched."""


def drop_counts(task_summaries: Sequence[Mapping[str, Any]]) -> tuple[int, int, Counter[str]]:
    """``(read, kept, dropped by reason)`` over every input file of every task."""
    read = kept = 0
    by_reason: Counter[str] = Counter()
    for task in task_summaries:
        for entry in task["files"]:
            read += int(entry["read"])
            kept += int(entry["kept"])
            by_reason.update({reason: len(at) for reason, at in entry["dropped"].items()})
    return read, kept, by_reason


def accept_pass(task_summaries: Sequence[Mapping[str, Any]], max_drop_share: float) -> None:
    """Log the drops at WARNING, and refuse a pass that kept too little.

    Args:
        task_summaries: What each shard task returned.
        max_drop_share: Largest share of read records that may be dropped.

    Raises:
        ShardPassError: If nothing was read or kept, or more than ``max_drop_share`` was
            dropped; the message names the top reasons and the fix.
    """
    read, kept, by_reason = drop_counts(task_summaries)
    if by_reason:
        logger.warning(
            "shard_tfrecords dropped %d of %d records: %s (every drop is listed in "
            "shard_report.json)",
            read - kept,
            read,
            ", ".join(f"{reason} {count}" for reason, count in by_reason.most_common()),
        )
    if read == 0:
        raise ShardPassError(
            "shard_tfrecords read no records: the patches folder holds no TFRecord file it "
            "reads; run gee_export first (kedro run --pipelines gee_export). The previous shards "
            "are untouched."
        )
    share = (read - kept) / read
    if kept > 0 and share <= max_drop_share:
        return
    top = by_reason.most_common(TOP_REASONS)
    reasons = "; ".join(f"{reason}: {count}" for reason, count in top)
    hints = [hint for hint in dict.fromkeys(_hint(reason) for reason, _ in top) if hint]
    what = (
        f"kept nothing of {read} records"
        if kept == 0
        else f"kept {kept} of {read} records ({share:.0%} dropped, more than "
        f"shard_tfrecords.max_drop_share {max_drop_share:.0%})"
    )
    raise ShardPassError(
        " ".join(
            [f"shard_tfrecords {what}. Top drop reasons: {reasons}.", *hints]
            + ["The previous shards and stats.json are untouched."]
        )
    )


def _hint(reason: str) -> str:
    kind = reason_kind(reason)
    detail = reason.split(":", 1)[1] if ":" in reason else ""
    if kind == "missing_band":
        return (
            f"The exports have no band {detail}: make `bands` name bands the patches hold, or "
            "export them again with these bands."
        )
    if kind == "wrong_length" and "=" in detail:
        band, count = detail.split("=")
        return _patch_size_hint(band, int(count))
    if kind in ("missing_label", "bad_label"):
        return "Check shard_tfrecords.label_keys against the exports' label feature."
    if kind == "missing_point_index":
        return (
            "The records carry no point_index: set shard_tfrecords.records_without_point_index "
            "to the split they belong to."
        )
    if kind == "unknown_point_index":
        return "The patches were exported for another points table: run gee_export again."
    return ""


def _patch_size_hint(band: str, count: int) -> str:
    side = math.isqrt(count)
    if side * side == count and side % 2 == 1:
        return (
            f"Band {band} holds {side} x {side} px patches (patch_radius {(side - 1) // 2}); "
            "set patch_radius to match the exports, or export them again."
        )
    return f"Band {band} holds {count} values, not a square patch: the exports are damaged."
