"""Peak detection and one-to-one matching on hand-made cases."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest

from dam_detection.detection.matching import combine_counts, count_matches, match_points, rates
from dam_detection.detection.peaks import find_peaks
from dam_detection.pipelines.segment.detect import detect_peaks
from dam_detection.pipelines.segment.evaluate import evaluate_scene
from dam_detection.pipelines.segment.predict import ScoreMap
from tests.pipelines.segment.scenes import MIXER


def test_peaks_respect_threshold_and_min_distance():
    scores = np.zeros((40, 50), np.float16)
    scores[10, 10] = 0.9
    scores[10, 14] = 0.8  # 4 px from a higher peak: suppressed at min_distance 5
    scores[30, 40] = 0.5
    scores[30, 20] = 0.2  # below the threshold
    rows, cols, values = find_peaks(scores, threshold=0.3, min_distance=5)
    assert list(zip(rows, cols, np.round(values, 2), strict=True)) == [(10, 10, 0.9), (30, 40, 0.5)]
    rows, _, _ = find_peaks(scores, threshold=0.3, min_distance=3)
    assert len(rows) == 3  # now 10,14 is far enough
    rows, _, _ = find_peaks(scores, threshold=0.1, min_distance=5)
    assert len(rows) == 3


def test_a_flat_top_counts_once_at_its_centre_even_across_strips():
    scores = np.zeros((30, 30), np.float32)
    scores[9:14, 4:7] = 1.0  # saturated 5 x 3 plateau spanning the strip border at row 10
    rows, cols, values = find_peaks(scores, threshold=0.5, min_distance=2, strip_rows=10)
    assert (rows.tolist(), cols.tolist(), values.tolist()) == ([11.0], [5.0], [1.0])


def test_smoothing_ranks_a_ridge_above_a_brighter_speck_the_same_in_strips():
    scores = np.zeros((60, 40), np.float32)
    scores[10, 20] = 0.95  # one bright pixel
    scores[40, 12:28] = 0.7  # a wall's ridge of evidence
    rows, _, values = find_peaks(scores, threshold=0.05, min_distance=5)
    assert rows[0] == 10 and values[0] == np.float32(0.95)  # raw: the speck wins
    rows, cols, values = find_peaks(scores, threshold=0.01, min_distance=5, smoothing_px=2.0)
    assert rows[0] == 40 and values[0] > values[1]  # smoothed: the ridge wins
    # Strips of 16 rows (with the Gaussian's reach in their halo) give the whole map's peaks.
    strips = find_peaks(scores, 0.01, 5, smoothing_px=2.0, strip_rows=16)
    for whole, in_strips in zip((rows, cols, values), strips, strict=True):
        np.testing.assert_allclose(in_strips, whole, rtol=1e-6)


def test_find_peaks_checks_its_settings():
    with pytest.raises(ValueError, match="threshold"):
        find_peaks(np.zeros((4, 4)), 0.0, 2)
    with pytest.raises(ValueError, match="min_distance"):
        find_peaks(np.zeros((4, 4)), 0.5, 0)
    with pytest.raises(ValueError, match="smoothing_px"):
        find_peaks(np.zeros((4, 4)), 0.5, 2, smoothing_px=-1.0)


def test_detections_are_placed_at_pixel_centres_in_lonlat():
    scores = np.zeros((MIXER.height_px, MIXER.width_px), np.float16)
    scores[20, 30] = 0.75
    table = detect_peaks(ScoreMap("s", MIXER, scores), threshold=0.5, min_distance_px=5)
    assert table.crs.to_epsg() == 4326 and len(table) == 1
    utm = table.to_crs(MIXER.crs).geometry.iloc[0]
    assert (round(utm.x, 3), round(utm.y, 3)) == (500305.0, 4479795.0)  # pixel (30.5, 20.5)
    assert table["score"].iloc[0] == 0.75


def test_matching_is_one_to_one_within_tolerance():
    truth = np.array([[0.0, 0.0], [100.0, 0.0]])
    # Two detections on the first dam, one 40 m from the second, one far away.
    found = np.array([[5.0, 0.0], [-5.0, 0.0], [140.0, 0.0], [1000.0, 0.0]])
    pairs = match_points(truth, found, tolerance=50)
    assert sorted(map(tuple, pairs)) == [(0, 0), (1, 2)] or sorted(map(tuple, pairs)) == [
        (0, 1),
        (1, 2),
    ]
    assert len(match_points(truth, found, tolerance=30)) == 1
    assert len(match_points(truth, np.empty((0, 2)), tolerance=30)) == 0


def test_matching_maximises_pairs_where_greedy_nearest_would_not():
    # Detection 0 is nearest to dam 1, but taking it leaves dam 0 unmatched.
    truth = np.array([[0.0, 0.0], [60.0, 0.0]])
    found = np.array([[40.0, 0.0], [100.0, 0.0]])
    assert sorted(map(tuple, match_points(truth, found, tolerance=45))) == [(0, 0), (1, 1)]


def test_counts_and_rates_over_thresholds_and_scenes():
    truth = np.array([[0.0, 0.0], [500.0, 0.0], [1000.0, 0.0]])
    found = np.array([[10.0, 0.0], [510.0, 0.0], [3000.0, 0.0]])
    counts = count_matches(truth, found, np.array([0.9, 0.4, 0.8]), [50.0], [0.3, 0.5])
    assert counts[50.0] == [
        {"threshold": 0.3, "tp": 2, "fp": 1, "fn": 1},
        {"threshold": 0.5, "tp": 1, "fp": 1, "fn": 2},
    ]
    combined = combine_counts([counts, counts])
    assert combined[50.0][0]["tp"] == 4 and combined[50.0][0]["precision"] == pytest.approx(0.6667)
    assert rates(0, 0, 0) == {"precision": 1.0, "recall": 1.0, "f1": 1.0}
    assert rates(0, 3, 2) == {"precision": 0.0, "recall": 0.0, "f1": 0.0}


def test_evaluate_scene_measures_distances_in_metres():
    lon, lat = -99.5, 40.5
    truth = gpd.GeoDataFrame(geometry=gpd.points_from_xy([lon], [lat]), crs="EPSG:4326")
    # ~120 m east (0.0014 deg of longitude at 40.5 N).
    found = gpd.GeoDataFrame({"score": [0.9]}, geometry=gpd.points_from_xy([lon + 0.0014], [lat]),
                             crs="EPSG:4326")  # fmt: skip
    counts = evaluate_scene(truth, found, [100.0, 150.0], [0.5])
    assert counts[100.0][0]["tp"] == 0 and counts[150.0][0]["tp"] == 1


def test_detections_cut_from_the_candidates_equal_a_search_at_the_threshold():
    from scipy import ndimage

    from dam_detection.pipelines.segment.nodes import detect_candidates, detect_dams
    from dam_detection.pipelines.segment.settings import SegmentSettings
    from tests.settings import base_settings

    rng = np.random.default_rng(4)
    smooth = ndimage.gaussian_filter(rng.random((MIXER.height_px, MIXER.width_px)), 2)
    heat = ((smooth - smooth.min()) / np.ptp(smooth)).astype(np.float16)
    heat[20:23, 30:33] = 1.0  # a saturated plateau
    score_map = ScoreMap("s", MIXER, heat)
    settings = {"threshold": 0.6, "min_distance_px": 4.0, "smoothing_px": 0.0}
    params = base_settings(SegmentSettings, "segment", evaluation={"score_floor": 0.05})
    candidates = detect_candidates({"s": score_map}, settings, params)
    cut = detect_dams(candidates, settings)["s"]
    direct = detect_peaks(score_map, 0.6, 4.0)
    assert len(candidates["s"]) > len(cut) > 1
    np.testing.assert_array_equal(cut[["row", "col", "score"]], direct[["row", "col", "score"]])
