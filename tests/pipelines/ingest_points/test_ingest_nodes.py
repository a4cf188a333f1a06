"""The nodes of ingest_points, one by one, on tiny in-memory inputs."""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import numpy as np
import pytest
from matplotlib.figure import Figure
from shapely.geometry import Point

from dam_detection.image_sources.base import WaterEdgeSampling
from dam_detection.pipelines.ingest_points import nodes
from dam_detection.pipelines.ingest_points.spatial import EARTH_RADIUS_M

DEGREE_M = EARTH_RADIUS_M * np.pi / 180
REGIONS = [
    {"name": "box", "bbox": [-100.0, 40.0, -99.0, 41.0]},
    {"name": "tri", "polygon": [[-98.0, 40.0], [-97.0, 40.0], [-97.5, 41.0]]},
]


class FakeWaterSource:
    """An ImageSource stand-in that records what it was asked."""

    name = "fake"

    def __init__(self) -> None:
        self.calls: list[tuple[gpd.GeoDataFrame, WaterEdgeSampling]] = []

    def water_edge_points(
        self, regions: gpd.GeoDataFrame, sampling: WaterEdgeSampling
    ) -> gpd.GeoDataFrame:
        self.calls.append((regions, sampling))
        # A 4 x 4 grid per region, capped like a real source would.
        names, geometry = [], []
        for name, shape in zip(regions["name"], regions.geometry, strict=True):
            west, south, east, north = shape.bounds
            grid = [(x, y) for x in np.linspace(west, east, 6)[1:-1]
                    for y in np.linspace(south, north, 6)[1:-1]]  # fmt: skip
            inside = [Point(xy) for xy in grid if shape.contains(Point(xy))]
            inside = inside[: sampling.max_points_per_region or len(inside)]
            names += [name] * len(inside)
            geometry += inside
        return gpd.GeoDataFrame({"region": names}, geometry=geometry, crs=4326)


def _frame(rows: list[tuple[str, float, float]]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"key": [key for key, _, _ in rows]},
        geometry=[Point(lon, lat) for _, lon, lat in rows],
        crs=4326,
    )


def _source(name: str, kind: str, rows: list[tuple[str, float, float]]) -> tuple[Any, Any]:
    settings = {"reader": "vector", "kind": kind, "id_column": "key"}
    return nodes.read_source(_frame(rows), settings, source=name)


def test_build_regions_accepts_boxes_and_polygons_and_names_bad_entries():
    regions = nodes.build_regions(REGIONS)
    assert regions["name"].tolist() == ["box", "tri"] and regions.crs.to_epsg() == 4326
    with pytest.raises(ValueError, match=r"regions\[0\] \(x\): bbox"):
        nodes.build_regions([{"name": "x", "bbox": [1, 1, 0, 0]}])
    with pytest.raises(ValueError, match=r"regions\[1\]: .*unique name"):
        nodes.build_regions([REGIONS[0], REGIONS[0]])
    with pytest.raises(ValueError, match="exactly one of bbox or polygon"):
        nodes.build_regions([{"name": "y"}])


def test_sample_water_edge_points_asks_the_configured_source(monkeypatch):
    fake = FakeWaterSource()
    asked: list[dict] = []
    monkeypatch.setattr(nodes, "make_image_source", lambda cfg: asked.append(cfg) or fake)
    regions = nodes.build_regions(REGIONS)
    settings = {"enabled": True, "sampling": {"seed": 7, "max_points_per_region": 3}}
    points = nodes.sample_water_edge_points(regions, {"kind": "simulated"}, settings)
    assert asked == [{"kind": "simulated"}]
    assert fake.calls[0][1] == WaterEdgeSampling(seed=7, max_points_per_region=3)
    assert points["region"].tolist() == ["box"] * 3 + ["tri"] * 3


def test_sample_water_edge_points_disabled_asks_nothing(monkeypatch):
    monkeypatch.setattr(nodes, "make_image_source", lambda cfg: pytest.fail("asked"))
    points = nodes.sample_water_edge_points(nodes.build_regions(REGIONS), {}, {"enabled": False})
    assert points.empty


def test_random_points_are_seeded_and_inside_regions():
    regions = nodes.build_regions(REGIONS)
    first = nodes.sample_random_points(regions, {"count": 50, "seed": 1})
    again = nodes.sample_random_points(regions, {"count": 50, "seed": 1})
    other = nodes.sample_random_points(regions, {"count": 50, "seed": 2})
    assert (
        len(first) == 50 and first.geom_equals(again).all() and not first.geom_equals(other).all()
    )
    union = regions.union_all()
    assert first.within(union).all()
    assert set(first["region"]) == {"box", "tri"}


def _candidates(missing: bool = False) -> tuple[gpd.GeoDataFrame, list[dict]]:
    dams = _source("dams", "dam", [("a", -100.0, 40.0), ("b", -100.0, 40.0 + 10 / DEGREE_M)])
    bridges = _source(
        "bridges",
        "bridge",
        [("near_dam_duplicate", -100.0, 40.0 + 5 / DEGREE_M), ("close", -100.0, 40.01),
         ("far", -99.0, 41.0)],
    )  # fmt: skip
    params = {"sources": {"dams": {}, "bridges": {}, **({"extra": {}} if missing else {})}}
    water = _frame([("w", -98.0, 41.0)]).drop(columns="key")
    random_points = _frame([("r", -97.0, 42.0), ("r2", -96.0, 42.0)]).drop(columns="key")
    return nodes.combine_candidates(params, water, random_points, *dams, *bridges)


def test_combine_candidates_stacks_sources_and_generated_negatives():
    candidates, summaries = _candidates()
    assert [s["source"] for s in summaries] == ["dams", "bridges", "water_edge", "random"]
    assert candidates["point_id"].tolist()[-3:] == ["water_edge:0", "random:0", "random:1"]
    assert candidates.crs.to_epsg() == 4326


def test_combine_candidates_refuses_unwired_sources():
    with pytest.raises(ValueError, match=r"\['extra'\].*KEDRO_ENV"):
        _candidates(missing=True)


def test_select_points_merges_across_sources_keeps_dams_and_drops_near_negatives():
    candidates, _ = _candidates()
    params = {"merge_distance_m": 20, "min_distance_to_dam_m": 2000, "sampling": {}}
    selected, stats = nodes.select_points(candidates, params)
    assert selected["point_id"].tolist() == [
        "dams:a", "bridges:far", "water_edge:0", "random:0", "random:1"
    ]  # fmt: skip
    assert stats["merged_duplicates"]["removed_by_source"] == {"bridges": 1, "dams": 1}
    assert stats["merged_duplicates"]["groups_with_duplicates"] == 1
    assert stats["near_dam_dropped"]["by_kind"] == {"bridge": 1}


def test_select_points_caps_kinds_with_a_seed_and_explains_missing_shares():
    candidates, _ = _candidates()
    sampling = {"max_points": 4, "seed": 0, "fractions": {"dam": 0.5, "random": 0.5}}
    params = {"merge_distance_m": 0, "min_distance_to_dam_m": 0, "sampling": sampling}
    with pytest.raises(ValueError, match="kind 'bridge' has no share in ingest_points.sampling"):
        nodes.select_points(candidates, params)
    sampling["fractions"].update(bridge=0.5, water_edge=0.5)
    selected, stats = nodes.select_points(candidates, params)
    again, _ = nodes.select_points(candidates, params)
    assert selected["point_id"].tolist() == again["point_id"].tolist()
    assert selected["kind"].value_counts().to_dict() == {"dam": 1, "bridge": 1, "water_edge": 1,
                                                          "random": 1}  # fmt: skip
    assert stats["capped"]["dropped"] == {"bridge": 2, "dam": 1, "random": 1, "water_edge": 0}


def test_assign_splits_builds_the_points_table():
    candidates, summaries = _candidates()
    selected, selection = nodes.select_points(candidates, {"sampling": {}})
    split = {"block_size_km": 10, "fractions": {"train": 0.5, "val": 0.25, "test": 0.25}}
    points, stats = nodes.assign_splits(selected, split)
    assert list(points.columns) == list(nodes.POINT_COLUMNS)
    assert points["point_id"].is_monotonic_increasing
    assert points["point_index"].tolist() == list(range(len(points)))
    assert points["point_index"].dtype == np.int64 and points["label"].dtype == np.int64
    assert set(points["split"]) <= {"train", "val", "test"}
    assert (
        stats["smallest_cross_split_distance_m"] is None
        or stats["smallest_cross_split_distance_m"] > 0
    )
    report = nodes.build_report(summaries, selection, stats, points)
    assert report["rows_in"] == 8 and report["points_out"] == len(points)
    assert report["rows_in"] == (
        report["points_out"]
        + report["merged_duplicates"]["removed"]
        + sum(report["near_dam_dropped"]["by_kind"].values())
    )
    assert sum(report["counts"]["split"].values()) == len(points)


def test_report_sums_rejections_over_sources():
    summaries = [
        {"source": "a", "rows_in": 3, "kept": 1, "rejected": {"out_of_range": 2}, "filtered": {}},
        {"source": "b", "rows_in": 2, "kept": 0, "rejected": {"out_of_range": 1},
         "filtered": {"not_over_waterway": 1}},
    ]  # fmt: skip
    empty = gpd.GeoDataFrame(
        {c: [] for c in nodes.POINT_COLUMNS if c != "geometry"}, geometry=[], crs=4326
    )
    report = nodes.build_report(summaries, {}, {}, empty)
    assert report["rejected"] == {"out_of_range": 3, "not_over_waterway": 1}
    assert report["rows_valid"] == 1


def test_plot_points_map_draws_both_panels():
    candidates, _ = _candidates()
    selected, _ = nodes.select_points(candidates, {"sampling": {}})
    points, _ = nodes.assign_splits(selected, {"block_size_km": 10})
    figure = nodes.plot_points_map(points)
    assert isinstance(figure, Figure)
    assert [axes.get_title() for axes in figure.axes] == ["points by kind", "points by split"]
