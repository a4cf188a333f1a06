"""Detections against known dams: one-to-one matching within a tolerance, in metres.

Each known dam can explain at most one detection and each detection at most one dam. The
matching maximises the number of pairs closer than the tolerance (Hungarian assignment on the
distances, pairs beyond the tolerance priced out), so a dense cluster of detections on one wall
counts one true positive and the rest as false positives.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.spatial import cKDTree


def match_points(truth_xy: np.ndarray, found_xy: np.ndarray, tolerance: float) -> np.ndarray:
    """Pairs ``(truth index, found index)`` of a maximum one-to-one matching within tolerance.

    Among matchings of maximum size, the one with the smallest total distance is returned.

    Args:
        truth_xy: ``(n, 2)`` known positions in metres.
        found_xy: ``(m, 2)`` detected positions in metres.
        tolerance: Largest distance of a pair, metres.

    Returns:
        ``(k, 2)`` integer array of matched index pairs.
    """
    truth_xy = np.asarray(truth_xy, dtype=np.float64).reshape(-1, 2)
    found_xy = np.asarray(found_xy, dtype=np.float64).reshape(-1, 2)
    if len(truth_xy) == 0 or len(found_xy) == 0:
        return np.empty((0, 2), dtype=np.int64)
    # Only detections near some dam can be matched: keep the assignment problem small.
    near = cKDTree(truth_xy).query(found_xy, distance_upper_bound=tolerance)[0] <= tolerance
    candidates = np.flatnonzero(near)
    if candidates.size == 0:
        return np.empty((0, 2), dtype=np.int64)
    distance = np.linalg.norm(truth_xy[:, None, :] - found_xy[None, candidates, :], axis=-1)
    # A pair beyond the tolerance costs more than any set of feasible pairs can save.
    penalty = tolerance * (min(distance.shape) + 1) + 1.0
    cost = np.where(distance <= tolerance, distance, penalty)
    rows, cols = linear_sum_assignment(cost)
    ok = distance[rows, cols] <= tolerance
    return np.column_stack([rows[ok], candidates[cols[ok]]]).astype(np.int64)


def count_matches(
    truth_xy: np.ndarray,
    found_xy: np.ndarray,
    scores: np.ndarray,
    tolerances: Sequence[float],
    thresholds: Sequence[float],
) -> dict[float, list[dict[str, int]]]:
    """True/false positives and misses for every tolerance and score threshold.

    Returns:
        Tolerance to one ``{"threshold", "tp", "fp", "fn"}`` dict per threshold (in order).
    """
    scores = np.asarray(scores, dtype=np.float64)
    found_xy = np.asarray(found_xy, dtype=np.float64).reshape(-1, 2)
    counts: dict[float, list[dict[str, Any]]] = {}
    for tolerance in tolerances:
        rows = []
        for threshold in thresholds:
            kept = scores >= threshold
            tp = len(match_points(truth_xy, found_xy[kept], tolerance))
            found = int(kept.sum())
            rows.append(
                {"threshold": threshold, "tp": tp, "fp": found - tp, "fn": len(truth_xy) - tp}
            )
        counts[tolerance] = rows
    return counts


def rates(tp: int, fp: int, fn: int) -> dict[str, float]:
    """Precision, recall and F1 (precision 1 with no detections, recall 1 with nothing to find)."""
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4)}


def combine_counts(
    per_scene: Iterable[Mapping[float, Sequence[Mapping[str, Any]]]],
) -> dict[float, list[dict[str, Any]]]:
    """Sum counts over scenes and add precision, recall and F1."""
    total: dict[float, list[dict[str, Any]]] = {}
    for counts in per_scene:
        for tolerance, rows in counts.items():
            into = total.setdefault(
                tolerance, [{"threshold": r["threshold"], "tp": 0, "fp": 0, "fn": 0} for r in rows]
            )
            for acc, row in zip(into, rows, strict=True):
                for key in ("tp", "fp", "fn"):
                    acc[key] += row[key]
    return {
        tolerance: [{**row, **rates(row["tp"], row["fp"], row["fn"])} for row in rows]
        for tolerance, rows in total.items()
    }
