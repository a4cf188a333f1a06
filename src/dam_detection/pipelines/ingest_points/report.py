"""The report and the map of ``ingest_points``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import geopandas as gpd
import pandas as pd
from matplotlib.figure import Figure

#: Fixed colours, so that maps of different runs compare at a glance (others: Matplotlib's).
COLOURS = {
    "dam": "tab:red",
    "bridge": "tab:blue",
    "water_edge": "tab:cyan",
    "random": "tab:olive",
    "train": "tab:green",
    "val": "tab:orange",
    "test": "tab:purple",
}


def build_report(
    summaries: list[dict[str, Any]],
    selection: Mapping[str, Any],
    split_stats: Mapping[str, Any],
    points: gpd.GeoDataFrame,
) -> dict[str, Any]:
    """Account for every input row: kept, rejected by reason, merged, dropped, per split.

    Args:
        summaries: Per-source summaries from :func:`combine_candidates`.
        selection: Statistics from :func:`select_points`.
        split_stats: Statistics from :func:`assign_splits`.
        points: The final points table.

    Returns:
        The JSON-ready report.
    """
    rejected: dict[str, int] = {}
    for summary in summaries:
        for reason, count in {**summary["rejected"], **summary["filtered"]}.items():
            rejected[reason] = rejected.get(reason, 0) + count
    by_split_kind = pd.crosstab(points["split"], points["kind"]) if len(points) else pd.DataFrame()
    return {
        "rows_in": int(sum(summary["rows_in"] for summary in summaries)),
        "rows_valid": int(sum(summary["kept"] for summary in summaries)),
        "points_out": len(points),
        "rejected": rejected,
        "sources": {summary["source"]: summary for summary in summaries},
        **selection,
        "counts": {
            "kind": plain_counts(points["kind"].value_counts().to_dict()),
            "source": plain_counts(points["source"].value_counts().to_dict()),
            "split": plain_counts(points["split"].value_counts().to_dict()),
            "label": plain_counts(points["label"].value_counts().to_dict()),
            "split_by_kind": {
                split: plain_counts(row.to_dict()) for split, row in by_split_kind.iterrows()
            },
        },
        "split": dict(split_stats),
    }


def plot_points_map(points: gpd.GeoDataFrame) -> Figure:
    """Two maps of the points: coloured by kind and by split.

    Args:
        points: The points table.

    Returns:
        A Matplotlib figure for ``matplotlib.MatplotlibDataset``.
    """
    figure = Figure(figsize=(14, 6), layout="constrained")
    for axes, column in zip(figure.subplots(1, 2), ("kind", "split"), strict=True):
        for value, group in points.groupby(column, sort=True):
            # One marker style per group: ``plot`` draws it far faster than ``scatter``, which
            # prepares a path per point (the whole inventory is ~94k points).
            axes.plot(
                group.geometry.x, group.geometry.y, linestyle="none", marker="o", markersize=2.5,
                markeredgewidth=0, color=COLOURS.get(str(value)), label=f"{value} ({len(group)})",
            )  # fmt: skip
        axes.set(title=f"points by {column}", xlabel="longitude", ylabel="latitude")
        axes.set_aspect("equal", adjustable="datalim")
        axes.legend(loc="lower left", fontsize="small", markerscale=2)
        axes.grid(linewidth=0.3)
    return figure


def plain_counts(counts: Mapping[Any, Any]) -> dict[str, int]:
    """Counts with string keys and int values, sorted by key (JSON-ready)."""
    return {
        str(key): int(value) for key, value in sorted(counts.items(), key=lambda kv: str(kv[0]))
    }
