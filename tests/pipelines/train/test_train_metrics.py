"""NumPy metrics against hand-computed values."""

import numpy as np
import pytest

from dam_detection.detection.settings import DetectionSettings
from dam_detection.detection.threshold import (
    confirmation_threshold,
    detection_at,
    detection_threshold,
    patch_peak_scores,
    validation_threshold,
)
from dam_detection.pipelines.train import metrics


def test_perfect_and_inverted_rankings():
    labels = np.array([0, 0, 1, 1])
    assert metrics.roc_auc(labels, np.array([0.1, 0.2, 0.8, 0.9])) == pytest.approx(1.0)
    assert metrics.roc_auc(labels, np.array([0.9, 0.8, 0.2, 0.1])) == pytest.approx(0.0)
    assert metrics.pr_auc(labels, np.array([0.1, 0.2, 0.8, 0.9])) == pytest.approx(1.0)


def test_hand_computed_curve_with_a_tie():
    labels = np.array([1, 0, 1, 0, 1])
    scores = np.array([0.9, 0.8, 0.7, 0.7, 0.2])
    # Pairs (pos, neg) ranked right: 0.9>0.8, 0.9>0.7, 0.7=0.7 (half), 0.7<0.8, 0.2 < both.
    assert metrics.roc_auc(labels, scores) == pytest.approx((2 + 0.5) / 6)
    # Average precision: recall steps at 0.9 (P=1), 0.7 tie (P=2/4), 0.2 (P=3/5).
    assert metrics.pr_auc(labels, scores) == pytest.approx((1 + 0.5 + 0.6) / 3)


def test_threshold_report_and_confusion():
    labels = np.array([1, 1, 0, 0, 0])
    scores = np.array([0.9, 0.4, 0.6, 0.1, 0.2])
    threshold = metrics.best_f1_threshold(labels, scores)
    report = metrics.binary_report(labels, scores, threshold)
    assert report["confusion"]["tp"] + report["confusion"]["fn"] == 2
    assert report["f1"] == pytest.approx(
        2 * report["precision"] * report["recall"] / (report["precision"] + report["recall"])
    )
    at_half = metrics.binary_report(labels, scores, 0.5)
    assert at_half["confusion"] == {"tp": 1, "fp": 1, "tn": 2, "fn": 1}
    assert at_half["accuracy"] == pytest.approx(0.6)


def test_by_kind_reports_negatives_against_dams():
    labels = np.array([1, 1, 0, 0, 0, 0])
    scores = np.array([0.9, 0.8, 0.85, 0.1, 0.2, 0.3])
    kinds = ["dam", "dam", "bridge", "bridge", "random", "random"]
    report = metrics.report_by_kind(labels, scores, kinds, 0.5)
    assert set(report) == {"dam", "bridge", "random"}
    assert report["bridge"]["confusion"]["fp"] == 1
    assert report["bridge"]["recall"] is None and report["bridge"]["roc_auc"] is None
    assert report["bridge"]["against_dams"]["roc_auc"] == pytest.approx(0.75)
    assert report["random"]["against_dams"]["roc_auc"] == pytest.approx(1.0)


def test_detection_threshold_counts_every_other_peak_as_a_false_alarm():
    dam = np.zeros((41, 41), np.float32)
    dam[20, 21], dam[5, 5] = 0.875, 0.5  # the dam found at 0.875; a false alarm at 0.5
    land = np.zeros((41, 41), np.float32)
    land[30, 10] = 0.75  # a non-dam patch: any peak is a false alarm
    weak = np.zeros((41, 41), np.float32)
    weak[20, 20] = 0.625
    found, alarms, _ = patch_peak_scores([dam, land, weak], [1, 0, 1], 3.0, 4)
    assert found.tolist() == [0.875, 0.625] and sorted(alarms.tolist()) == [0.5, 0.75]
    # At 0.625 both dams and one alarm (F1 0.8) beat 0.875's one dam and no alarm (F1 0.67).
    chosen = detection_threshold(found, alarms)
    assert chosen["threshold"] == 0.625 and chosen["false_alarms"] == 1
    assert chosen["recall"] == 1.0 and abs(chosen["f1"] - 0.8) < 1e-9
    # Both dams with two alarms (P 0.5, R 1) or one dam alone (P 1, R 0.5): equal F1, and the
    # stricter threshold is kept; F2 weighs recall twice and takes both.
    recall_first = detection_threshold(np.array([0.9, 0.4]), np.array([0.5, 0.6]), beta=2.0)
    assert recall_first["threshold"] == 0.4 and recall_first["beta"] == 2.0
    assert detection_threshold(np.array([0.9, 0.4]), np.array([0.5, 0.6]))["threshold"] == 0.9
    # The same counts at any threshold, as benchmarks/scan_thresholds.py reads them.
    stricter = detection_at(found, alarms, 0.7)
    assert stricter["recall"] == 0.5 and stricter["false_alarms"] == 1
    assert stricter["precision"] == 0.5 and abs(stricter["f1"] - 0.5) < 1e-9


def test_a_peak_on_another_listed_dam_is_no_false_alarm():
    dam = np.zeros((41, 41), np.float32)
    dam[20, 21], dam[5, 5] = 0.875, 0.5  # the 0.5 peak is another dam the inventory lists
    land = np.zeros((41, 41), np.float32)
    land[30, 10], land[10, 30] = 0.75, 0.25  # a negative patch next to a listed dam at (30, 10)
    others = [np.array([[-15.0, -14.0]]), np.array([[10.0, -10.0]])]
    found, alarms, _ = patch_peak_scores([dam, land], [1, 0], 3.0, 4, other_dams=others)
    assert found.tolist() == [0.875] and alarms.tolist() == [0.25]


def test_a_threshold_chosen_on_other_smoothing_views_or_criterion_is_refused():
    def detection(smoothing_px: float = 0.0, views: int = 1, beta: float = 1.0):
        return DetectionSettings(min_distance_px=10, smoothing_px=smoothing_px, views=views,
                                 tolerance_m=150.0, threshold_beta=beta)  # fmt: skip

    chosen = {"fcn": {"detection": {"threshold": 0.4, "smoothing_px": 3.0, "views": 4}}}
    assert validation_threshold(chosen, detection(3.0, 4), "scan.threshold") == 0.4
    with pytest.raises(ValueError, match=r"detection.smoothing_px 3.0, and this run uses 0.0"):
        validation_threshold(chosen, detection(0.0, 4), "scan.threshold")
    with pytest.raises(ValueError, match=r"detection.views 4, and this run uses 1.*re-run"):
        validation_threshold(chosen, detection(3.0, 1), "scan.threshold")
    with pytest.raises(ValueError, match=r"detection.threshold_beta 1.0, and this run uses 1.5"):
        validation_threshold(chosen, detection(3.0, 4, beta=1.5), "scan.threshold")
    # Metrics written before the settings existed were neither smoothed nor averaged.
    assert validation_threshold({"fcn": {"detection": {"threshold": 0.7}}}, detection(), "x") == 0.7
    with pytest.raises(KeyError, match="re-run the train pipeline"):
        validation_threshold({"fcn": {}}, detection(), "scan.threshold")


def test_confirmation_threshold_tells_dam_points_from_non_dam_points():
    land = np.zeros((41, 41), np.float32)
    land[20, 22], land[5, 5] = 0.34375, 0.875  # weak near the centre; strong far from it
    bare = np.zeros((41, 41), np.float32)
    scored = patch_peak_scores([land, bare], [0, 0], 3.0, 4)
    assert scored.non_dam_points.tolist() == [0.34375, 0.0]
    assert sorted(scored.false_alarms.tolist()) == [0.34375, 0.875]  # both still false alarms
    dams = np.array([0.875, 0.375, 0.3125, 0.0])  # the last dam had no peak near its point
    chosen = confirmation_threshold(dams, scored.non_dam_points)
    # 0.3125 confirms three of four dams and one non-dam point (F1 0.75); 0.375 two dams and
    # none (0.667). The land patch's strong peak far from its point does not count.
    assert chosen["threshold"] == 0.3125 and chosen["false_alarms"] == 1
    assert chosen["f1"] == pytest.approx(0.75) and chosen["non_dam_points"] == 2
    metrics = {"fcn": {"detection": {"threshold": 0.7, "views": 1, "confirmation": chosen}}}
    settings = DetectionSettings(
        min_distance_px=10, smoothing_px=0.0, views=1, tolerance_m=150.0, threshold_beta=1.0
    )
    assert validation_threshold(metrics, settings, "x", "confirmation") == 0.3125
    del metrics["fcn"]["detection"]["confirmation"]
    with pytest.raises(KeyError, match="x is 'validation' but train_metrics has no 'confirm"):
        validation_threshold(metrics, settings, "x", "confirmation")
