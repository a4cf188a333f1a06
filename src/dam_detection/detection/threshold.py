"""The FCN's detection threshold, chosen on whole validation patches the way scenes are judged.

The centre-pixel threshold (best F1 of the score at the point) says nothing about false alarms:
a scene is mostly land that is not a dam, and every local maximum of the heatmap above the
threshold is a detection. Here each validation patch is segmented whole, its peaks are found
exactly as ``segment`` finds them (:func:`~dam_detection.detection.peaks.find_peaks`),
and the threshold is the one with the best detection F1: a dam patch's dam is found by its
highest peak within the tolerance of the point; every other peak, in every patch, is a false
alarm.

The same heatmaps choose a second, lower threshold for the scan: the **confirmation**
threshold, at which a peak within an inventory's radius of a listed dam confirms that dam
(:func:`confirmation_threshold`). An inventory point is evidence of
a dam, so a weaker peak beside one is likelier a dam than the same peak anywhere; the threshold
is the best F1 of telling dam patches' points (their highest peak near the centre) from
non-dam patches' points (theirs), the question a listed point asks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, NamedTuple

import numpy as np

from dam_detection.detection.peaks import find_peaks
from dam_detection.detection.settings import DetectionSettings

#: Peaks below this never count (they could not be chosen as a threshold anyway).
PEAK_FLOOR = 0.01


class PatchPeaks(NamedTuple):
    """What the peaks of whole-patch heatmaps say (:func:`patch_peak_scores`)."""

    dams: np.ndarray
    """Per dam patch, the highest peak within the tolerance of its point (0 where none)."""
    false_alarms: np.ndarray
    """Every other peak's score, in every patch."""
    non_dam_points: np.ndarray
    """Per non-dam patch, the highest peak within the tolerance of its point (0 where none):
    what the heatmap says of a place that is no dam (:func:`confirmation_threshold`)."""


def patch_peak_scores(
    heatmaps: Sequence[np.ndarray] | np.ndarray,
    labels: Sequence[float],
    tolerance_px: float,
    min_distance_px: int,
    other_dams: np.ndarray | None = None,
    smoothing_px: float = 0.0,
) -> PatchPeaks:
    """Scores of the dams, of the false alarms and of the non-dam points in whole-patch heatmaps.

    Args:
        heatmaps: ``(S, S)`` dam probabilities of patches centred on their points.
        labels: Per patch, 1 for a dam at the centre.
        tolerance_px: A peak this close to a patch's point scores that point.
        min_distance_px: Minimum distance between peaks (``detection.min_distance_px``).
        other_dams: Per patch, ``(K, 2)`` offsets from the centre of other dams the inventories
            list inside it; peaks within the tolerance of one are neither found dams nor false
            alarms (the patch's label says nothing about them).
        smoothing_px: Gaussian sigma applied before the peaks are found (``find_peaks``).
    """
    dams, alarms, non_dams = [], [], []
    for number, (heatmap, label) in enumerate(zip(heatmaps, labels, strict=True)):
        rows, cols, scores = find_peaks(heatmap, PEAK_FLOOR, min_distance_px, smoothing_px)
        centre = (heatmap.shape[0] // 2, heatmap.shape[1] // 2)
        if other_dams is not None and len(other_dams[number]):
            others = np.asarray(other_dams[number], np.float64) + centre
            gap = np.hypot(rows[:, None] - others[None, :, 0], cols[:, None] - others[None, :, 1])
            keep = ~(gap <= tolerance_px).any(axis=1)
            rows, cols, scores = rows[keep], cols[keep], scores[keep]
        near = np.hypot(rows - centre[0], cols - centre[1]) <= tolerance_px
        best = int(np.argmax(np.where(near, scores, -1.0))) if near.any() else -1
        best_score = float(scores[best]) if best >= 0 else 0.0
        if float(label) < 0.5:
            non_dams.append(best_score)
            alarms.append(scores)
            continue
        dams.append(best_score)
        others = np.ones(len(scores), bool)
        if best >= 0:
            others[best] = False
        alarms.append(scores[others])
    return PatchPeaks(
        np.asarray(dams, np.float64),
        np.concatenate([np.zeros(0), *alarms]).astype(np.float64),
        np.asarray(non_dams, np.float64),
    )


def confirmation_threshold(dam_scores: np.ndarray, non_dam_scores: np.ndarray) -> dict[str, Any]:
    """The peak threshold that best tells listed dams from places that are none (best F1).

    Args:
        dam_scores: Per dam patch, its dam's score (``PatchPeaks.dams``).
        non_dam_scores: Per non-dam patch, its point's score (``PatchPeaks.non_dam_points``).

    Returns:
        ``threshold``, ``precision``, ``recall``, ``f1``, and ``false_alarms``: non-dam points
        a peak at or above it would confirm, of ``non_dam_points``.
    """
    chosen = detection_threshold(dam_scores, non_dam_scores)  # always F1
    return {**chosen, "non_dam_points": int(len(non_dam_scores))}


def detection_threshold(dam_scores: np.ndarray, alarm_scores: np.ndarray,
                        beta: float = 1.0) -> dict[str, Any]:  # fmt: skip
    """The peak threshold with the best detection F-beta (the highest of equals).

    Args:
        dam_scores: Per dam, the score of its peak (``PatchPeaks.dams``).
        alarm_scores: Every other peak (``PatchPeaks.false_alarms``).
        beta: Recall weighs ``beta`` times precision (1: F1).

    Returns:
        ``threshold``, and ``precision``, ``recall``, ``f1``, ``false_alarms`` at it, with
        ``beta`` and ``f_beta``.
    """
    candidates = np.unique(dam_scores[dam_scores > 0])
    best: dict[str, Any] = {"threshold": 0.5, "precision": 0.0, "recall": 0.0, "f1": 0.0,
                            "false_alarms": 0, "f_beta": 0.0}  # fmt: skip
    for threshold in candidates[::-1]:  # highest first: ties keep the stricter threshold
        scored = detection_at(dam_scores, alarm_scores, float(threshold))
        precision, recall = scored["precision"], scored["recall"]
        scored["f_beta"] = (
            (1 + beta**2) * precision * recall / max(beta**2 * precision + recall, 1e-12)
        )
        if scored["f_beta"] > best["f_beta"]:
            best = scored
    return {**best, "beta": float(beta)}


def detection_at(dam_scores: np.ndarray, alarm_scores: np.ndarray,
                 threshold: float) -> dict[str, Any]:  # fmt: skip
    """Detection precision, recall, F1 and false alarms of peaks at or above ``threshold``.

    Returns:
        ``threshold``, ``precision``, ``recall``, ``f1``, ``false_alarms``.
    """
    found = int(np.sum(dam_scores >= threshold))
    false = int(np.sum(alarm_scores >= threshold))
    precision = found / max(found + false, 1)
    recall = found / max(len(dam_scores), 1)
    f1 = 2 * precision * recall / max(precision + recall, 1e-12)
    return {"threshold": threshold, "precision": precision, "recall": recall, "f1": f1,
            "false_alarms": false}  # fmt: skip


def validation_threshold(train_metrics: Mapping[str, Any], detection: DetectionSettings,
                         setting: str,
                         which: Literal["detection", "confirmation"] = "detection",
                         ) -> float:  # fmt: skip
    """A peak threshold that ``train`` chose on whole validation patches.

    Args:
        train_metrics: ``train_metrics.json``.
        detection: ``detection`` of this run: the threshold is only valid for peaks of maps
            smoothed and averaged over views (``smoothing_px``, ``views``) as train's were,
            chosen by the same criterion (``threshold_beta``).
        setting: The parameter that asked for it, for the error messages.
        which: ``detection`` (:func:`detection_threshold`) or ``confirmation``
            (:func:`confirmation_threshold`).

    Raises:
        KeyError: If ``train_metrics`` has no such FCN threshold.
        ValueError: If it was chosen with another smoothing, number of views or criterion.
    """
    try:
        chosen = train_metrics["fcn"]["detection"]
        block = chosen if which == "detection" else chosen[which]
        threshold = float(block["threshold"])
    except KeyError as exc:
        raise KeyError(
            f"{setting} is 'validation' but train_metrics has no {exc}: re-run the train "
            "pipeline or set a number"
        ) from exc
    # Metrics from before a setting existed were chosen without it: no smoothing, one view, F1.
    for key, before, now in (
        ("smoothing_px", 0.0, float(detection.smoothing_px)),
        ("views", 1, int(detection.views)),
        ("threshold_beta", 1.0, float(detection.threshold_beta)),
    ):
        trained = type(now)(chosen.get(key, before))
        if trained != now:
            raise ValueError(
                f"{setting} is 'validation' but train chose its threshold on heatmaps with "
                f"detection.{key} {trained}, and this run uses {now}: re-run the train "
                "pipeline with this setting, or set the threshold as a number"
            )
    return threshold
