"""Detections sorted into known dams and candidates, and the scan's metrics."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
from pyproj import Transformer

from dam_detection.pipelines.scan.known import mark_bridges, sort_detections
from dam_detection.pipelines.scan.merge import merge_tile_detections
from dam_detection.pipelines.scan.metrics import evaluate_scan

EPSG = 32612
X0, Y0 = 600_000.0, 4_140_000.0
TO_LONLAT = Transformer.from_crs(f"EPSG:{EPSG}", "EPSG:4326", always_xy=True)


def points(xy, **columns) -> gpd.GeoDataFrame:
    lon, lat = TO_LONLAT.transform(*np.asarray(xy, float).T)
    return gpd.GeoDataFrame(columns, geometry=gpd.points_from_xy(lon, lat), crs="EPSG:4326")


def detections(xy, scores, reservoir_ids=None) -> gpd.GeoDataFrame:
    tiles = [[
        {"detection_id": f"t_{i:03d}", "tile_id": "t", "x": X0 + x, "y": Y0 + y, "score": s,
         "reservoir_ids": (reservoir_ids or {}).get(i, [])}
        for i, ((x, y), s) in enumerate(zip(xy, scores, strict=True))
    ]]  # fmt: skip
    return merge_tile_detections(tiles, EPSG, min_distance_px=1)


def test_merge_suppresses_seam_duplicates_and_ranks_by_score():
    a = [{"detection_id": "a_000", "tile_id": "a", "x": X0, "y": Y0, "score": 0.7,
          "reservoir_ids": []}]  # fmt: skip
    b = [{"detection_id": "b_000", "tile_id": "b", "x": X0 + 40, "y": Y0, "score": 0.9,
          "reservoir_ids": []},
         {"detection_id": "b_001", "tile_id": "b", "x": X0 + 500, "y": Y0, "score": 0.5,
          "reservoir_ids": []}]  # fmt: skip
    merged = merge_tile_detections([a, b], EPSG, min_distance_px=10)
    assert merged["detection_id"].tolist() == ["b_000", "b_001"]  # 40 m apart: the higher
    assert merged["rank"].tolist() == [1, 2]
    assert merged.crs == "EPSG:4326"


def test_a_candidate_on_a_listed_bridge_is_no_candidate_a_known_dam_stays_known():
    found = detections([(0, 0), (1000, 0), (3000, 0)], [0.9, 0.8, 0.7])
    dams = points([(X0 + 1010, Y0)], point_id=["nat:1"], source=["national"], name=[None])
    bridges = points([(X0 + 60, Y0 + 80), (X0 + 1000, Y0 + 20)], point_id=["nbi:1", "nbi:2"],
                     source=["nbi", "nbi"], name=[None, None])  # fmt: skip
    sorted_ = sort_detections(found, dams, EPSG, {"default": 100.0})
    out = mark_bridges(sorted_, bridges, EPSG, 150.0).set_index("detection_id")
    assert out.loc["t_000", "status"] == "bridge" and out.loc["t_000", "matched_id"] == "nbi:1"
    assert out.loc["t_000", "distance_m"] == pytest.approx(100.0, abs=0.1)
    assert out.loc["t_000", "match_rule"] == "bridge"
    # The listed dam beside the second bridge is still that dam.
    assert out.loc["t_001", "status"] == "known" and out.loc["t_001", "matched_id"] == "nat:1"
    assert out.loc["t_002", "status"] == "candidate"  # 2 km from any bridge
    # A tighter radius, or none, leaves the first detection a candidate.
    assert mark_bridges(sorted_, bridges, EPSG, 90.0)["status"].tolist()[0] == "candidate"
    assert (mark_bridges(sorted_, bridges, EPSG, None)["status"] != "bridge").all()


def test_known_within_each_inventorys_radius_one_detection_per_point():
    found = detections([(0, 0), (30, 0), (0, 400), (2000, 0)], [0.9, 0.8, 0.7, 0.6])
    inventory = points(
        [(X0 + 20, Y0), (X0, Y0 + 800)], point_id=["nat:1", "grand:7"],
        source=["national", "grand"], name=["Presa Ñ", None],
    )  # fmt: skip
    out = sort_detections(found, inventory, EPSG, {"default": 100.0, "grand": 450.0})
    by_id = out.set_index("detection_id")
    # The nearest detection takes the national point; the other on that wall stays a candidate.
    assert by_id.loc["t_001", "status"] == "known" and by_id.loc["t_001", "matched_id"] == "nat:1"
    assert by_id.loc["t_001", "distance_m"] == pytest.approx(10.0, abs=0.1)
    assert by_id.loc["t_000", "status"] == "candidate"
    # GRanD's wider radius (its coordinates are rounded) reaches 400 m.
    assert by_id.loc["t_002", "status"] == "known" and by_id.loc["t_002", "inventory"] == "grand"
    far = by_id.loc["t_003"]
    assert far["status"] == "candidate" and far["nearest_id"] == "nat:1"
    assert far["nearest_distance_m"] == pytest.approx(1980.0, abs=0.5)


def test_a_listed_point_on_the_reservoir_names_the_dam_however_far():
    found = detections([(0, 0)], [0.8], reservoir_ids={0: ["nat:9"]})
    inventory = points([(X0 + 900, Y0 + 300)], point_id=["nat:9"], source=["national"],
                       name=[None])  # fmt: skip
    out = sort_detections(found, inventory, EPSG, {"default": 300.0})
    row = out.iloc[0]
    assert (row["status"], row["matched_id"], row["match_rule"]) == ("known", "nat:9", "reservoir")
    assert row["distance_m"] == pytest.approx(948.7, abs=0.1)


def test_no_inventory_makes_every_detection_a_candidate():
    found = detections([(0, 0), (500, 0)], [0.9, 0.8])
    empty = points(np.empty((0, 2)), point_id=[], source=[], name=[])
    out = sort_detections(found, empty, EPSG, {"default": 300.0})
    assert out["status"].tolist() == ["candidate", "candidate"]
    assert out["nearest_id"].isna().all()


def test_metrics_count_discoveries_only_among_candidates():
    # Dams: 0 listed (found, known), 1 unlisted (found by a candidate), 2 unlisted (found but
    # called known: not a discovery), 3 unlisted (missed). Detection 4 is a false alarm.
    truth_xy = [(X0, Y0), (X0 + 1000, Y0), (X0 + 2000, Y0), (X0 + 3000, Y0)]
    truth = points(truth_xy, dam_id=[0, 1, 2, 3], listed=[True, False, False, False])
    found = detections([(10, 0), (1000, 20), (2000, 0), (5000, 0)], [0.9, 0.8, 0.7, 0.95])
    found = found.assign(status=np.where(found["score"].isin([0.9, 0.7]), "known", "candidate"))
    metrics = evaluate_scan(found, truth, EPSG, 150.0, top_k=[1, 2], calibration_bins=2,
                            bootstrap=200, seed=0)  # fmt: skip
    assert metrics["discovery_recall"] == pytest.approx(1 / 3, abs=1e-4)
    assert metrics["candidate_precision"] == 0.5
    assert metrics["listed_recall"] == 1.0
    assert metrics["known_that_are_unlisted_dams"] == 1
    assert metrics["top_k_precision"] == {"1": 0.0, "2": 0.5}  # the false alarm ranks first
    assert metrics["reviews_per_discovery"] == 2.0
    low, high = metrics["discovery_recall_95"]
    assert low <= metrics["discovery_recall"] <= high
    assert sum(row["candidates"] for row in metrics["calibration"]) == 2


def test_metrics_by_kind_of_dam_and_false_candidates_by_look_alike():
    # Dams: 0 a listed reservoir dam (found), 1 an unlisted farm pond (found by a candidate),
    # 2 an unlisted weir (missed). Candidates 3 and 4 are no dam: 3 on a quarry, 4 elsewhere.
    truth_xy = [(X0, Y0), (X0 + 1000, Y0), (X0 + 2000, Y0)]
    truth = points(truth_xy, dam_id=[0, 1, 2], listed=[True, False, False],
                   kind=["reservoir", "farm_pond", "weir"])  # fmt: skip
    found = detections([(0, 0), (1000, 0), (4000, 0), (6000, 0)], [0.9, 0.8, 0.7, 0.6])
    found = found.assign(status=["known", "candidate", "candidate", "candidate"])
    quarry = points([(X0 + 4050, Y0)], kind=["quarry"])
    metrics = evaluate_scan(found, truth, EPSG, 150.0, top_k=[1], calibration_bins=2,
                            bootstrap=0, seed=0, lookalikes=quarry)  # fmt: skip
    assert metrics["by_kind"] == {
        "farm_pond": {"dams": 1, "listed_recall": None, "discovery_recall": 1.0},
        "reservoir": {"dams": 1, "listed_recall": 1.0, "discovery_recall": None},
        "weir": {"dams": 1, "listed_recall": None, "discovery_recall": 0.0},
    }
    assert metrics["false_candidates_on"] == {"elsewhere": 1, "quarry": 1}


def test_a_weaker_peak_confirms_a_listed_dam_and_never_becomes_a_candidate():
    # 0.9 and 0.4 beside nat:1 (the weak one nearer); 0.35 40 m from nat:2, which no detection
    # took; 0.3 far from every listed dam; 0.45 on the reservoir of nat:3, 900 m off.
    found = detections([(0, 0), (100, 0), (2000, 40), (5000, 0), (8000, 0)],
                       [0.9, 0.4, 0.35, 0.3, 0.45], reservoir_ids={4: ["nat:3"]})  # fmt: skip
    inventory = points([(X0 + 120, Y0), (X0 + 2000, Y0), (X0 + 8900, Y0)],
                       point_id=["nat:1", "nat:2", "nat:3"], source=["national"] * 3,
                       name=[None] * 3)  # fmt: skip
    out = sort_detections(found, inventory, EPSG, {"default": 300.0}, threshold=0.5)
    assert out["detection_id"].tolist() == ["t_000", "t_002"]
    assert out["rank"].tolist() == [1, 2]
    rows = out.set_index("detection_id")
    # The detection proper keeps its dam although a weaker peak lies nearer the point.
    assert rows.loc["t_000", ["status", "matched_id", "match_rule"]].tolist() == [
        "known", "nat:1", "radius"]  # fmt: skip
    assert rows.loc["t_002", ["status", "matched_id", "match_rule"]].tolist() == [
        "known", "nat:2", "confirmed"]  # fmt: skip
    assert rows.loc["t_002", "distance_m"] == pytest.approx(40.0, abs=0.1)
    # Without a threshold every peak is a detection: the nearer weak peak takes nat:1 and the
    # others are candidates.
    plain = sort_detections(found, inventory, EPSG, {"default": 300.0}).set_index("detection_id")
    assert plain.loc["t_001", "matched_id"] == "nat:1" and plain.loc["t_000", "status"] == (
        "candidate")  # fmt: skip
    assert plain.loc["t_004", "match_rule"] == "reservoir" and len(plain) == 5


def test_metrics_report_listed_recall_with_and_without_confirmations():
    truth = points([(X0, Y0), (X0 + 1000, Y0), (X0 + 2000, Y0)], dam_id=[0, 1, 2],
                   listed=[True, True, False])  # fmt: skip
    # The second confirmation lies 400 m from every dam: a listed point far off its wall.
    found = detections([(10, 0), (1000, 30), (3000, 400)], [0.9, 0.35, 0.3])
    found = found.assign(status="known", match_rule=["radius", "confirmed", "confirmed"])
    metrics = evaluate_scan(found, truth, EPSG, 150.0, top_k=[1], calibration_bins=2,
                            bootstrap=0, seed=0)  # fmt: skip
    assert metrics["listed_recall"] == 1.0
    assert metrics["listed_recall_at_threshold"] == 0.5
    assert (metrics["confirmed"], metrics["confirmed_that_are_dams"]) == (2, 1)
