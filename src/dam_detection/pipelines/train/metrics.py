"""Binary classification metrics in NumPy: ROC and PR curves, AUCs, thresholds, confusion.

Scores are dam probabilities, labels 1 (dam) / 0. Ties are handled as scikit-learn does: the
curves step at each distinct score.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def _sorted_counts(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, ...]:
    """Cumulative true/false positives at each distinct score, highest score first."""
    labels = np.asarray(labels, dtype=np.float64).ravel()
    scores = np.asarray(scores, dtype=np.float64).ravel()
    order = np.argsort(-scores, kind="mergesort")
    scores, labels = scores[order], labels[order]
    distinct = np.flatnonzero(np.diff(scores)) if scores.size else np.array([], dtype=int)
    ends = np.r_[distinct, labels.size - 1] if labels.size else np.array([], dtype=int)
    true_pos = np.cumsum(labels)[ends]
    false_pos = (ends + 1) - true_pos
    return true_pos, false_pos, scores[ends]


def roc_curve(labels: np.ndarray, scores: np.ndarray) -> dict[str, np.ndarray]:
    """False and true positive rates at every threshold, starting at (0, 0).

    Returns:
        ``{"fpr", "tpr", "thresholds"}``; rates are NaN when a class is absent.
    """
    true_pos, false_pos, thresholds = _sorted_counts(labels, scores)
    positives, negatives = (true_pos[-1], false_pos[-1]) if true_pos.size else (0.0, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        tpr = np.r_[0.0, true_pos / positives]
        fpr = np.r_[0.0, false_pos / negatives]
    return {"fpr": fpr, "tpr": tpr, "thresholds": np.r_[np.inf, thresholds]}


def pr_curve(labels: np.ndarray, scores: np.ndarray) -> dict[str, np.ndarray]:
    """Precision and recall at every threshold, from recall 0 (precision 1) upwards."""
    true_pos, false_pos, thresholds = _sorted_counts(labels, scores)
    positives = true_pos[-1] if true_pos.size else 0.0
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.r_[1.0, true_pos / (true_pos + false_pos)]
        recall = np.r_[0.0, true_pos / positives]
    return {"precision": precision, "recall": recall, "thresholds": np.r_[np.inf, thresholds]}


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """Area under the ROC curve (trapezoids); ``None`` when only one class is present."""
    curve = roc_curve(labels, scores)
    if not np.all(np.isfinite(curve["tpr"])) or not np.all(np.isfinite(curve["fpr"])):
        return None
    return float(np.trapezoid(curve["tpr"], curve["fpr"]))


def pr_auc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """Average precision (step-wise area under the PR curve); ``None`` without positives."""
    curve = pr_curve(labels, scores)
    if not np.all(np.isfinite(curve["recall"])):
        return None
    return float(np.sum(np.diff(curve["recall"]) * curve["precision"][1:]))


def confusion(labels: np.ndarray, predicted: np.ndarray) -> dict[str, int]:
    """True/false positive/negative counts."""
    labels = np.asarray(labels).ravel() > 0.5
    predicted = np.asarray(predicted).ravel().astype(bool)
    return {
        "tp": int(np.sum(labels & predicted)),
        "fp": int(np.sum(~labels & predicted)),
        "tn": int(np.sum(~labels & ~predicted)),
        "fn": int(np.sum(labels & ~predicted)),
    }


def _ratio(numerator: float, denominator: float) -> float | None:
    return float(numerator / denominator) if denominator else None


def best_f1_threshold(labels: np.ndarray, scores: np.ndarray) -> float:
    """The score threshold (predict dam when ``score >= threshold``) that maximises F1.

    Falls back to 0.5 when the labels hold no dam.
    """
    curve = pr_curve(labels, scores)
    precision, recall = curve["precision"][1:], curve["recall"][1:]
    if not precision.size or not np.all(np.isfinite(recall)):
        return 0.5
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.nan_to_num(2 * precision * recall / (precision + recall))
    return float(curve["thresholds"][1:][int(np.argmax(f1))])


def binary_report(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, Any]:
    """Accuracy, precision, recall, F1, ROC-AUC, PR-AUC and the confusion matrix.

    Metrics that are undefined for the given examples (e.g. recall without dams) are ``None``.
    """
    labels = np.asarray(labels, dtype=np.float64).ravel()
    scores = np.asarray(scores, dtype=np.float64).ravel()
    counts = confusion(labels, scores >= threshold)
    precision = _ratio(counts["tp"], counts["tp"] + counts["fp"])
    recall = _ratio(counts["tp"], counts["tp"] + counts["fn"])
    f1 = (
        _ratio(2 * precision * recall, precision + recall)
        if precision is not None and recall is not None
        else None
    )
    return {
        "count": int(labels.size),
        "positives": int(np.sum(labels > 0.5)),
        "threshold": float(threshold),
        "accuracy": _ratio(counts["tp"] + counts["tn"], labels.size),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "roc_auc": roc_auc(labels, scores),
        "pr_auc": pr_auc(labels, scores),
        "confusion": counts,
    }


def report_by_kind(
    labels: np.ndarray, scores: np.ndarray, kinds: Sequence[str], threshold: float
) -> dict[str, dict[str, Any]]:
    """:func:`binary_report` for each point kind alone (``dam``, ``bridge``, ``water_edge``...),
    plus each non-dam kind against all dams, which says which negatives fool the model.
    """
    labels = np.asarray(labels, dtype=np.float64).ravel()
    scores = np.asarray(scores, dtype=np.float64).ravel()
    kind_of = np.asarray(kinds, dtype=object)
    dams = labels > 0.5
    report = {}
    for kind in sorted(set(kind_of.tolist())):
        alone = kind_of == kind
        entry = binary_report(labels[alone], scores[alone], threshold)
        if not np.any(dams[alone]) and np.any(dams):
            versus = alone | dams
            entry["against_dams"] = binary_report(labels[versus], scores[versus], threshold)
        report[str(kind)] = entry
    return report
