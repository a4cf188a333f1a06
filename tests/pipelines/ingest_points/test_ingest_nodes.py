"""The nodes of ingest_points, one by one, on tiny in-memory inputs."""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import numpy as np
import pytest
from matplotlib.figure import Figure
from shapely.geometry import Point

from dam_detection.datasets.point_sources import PointSource, PointSourceSettings
from dam_detection.image_sources.base import WaterEdgeSampling
from dam_detection.image_sources.settings import ImageSourceSettings
from dam_detection.pipelines.ingest_points import nodes
from dam_detection.pipelines.ingest_points.settings import (
    RandomNegativeSettings,
    SamplingSettings,
    SplitSettings,
    WaterEdgeSettings,
)
from dam_detection.pipelines.ingest_points.spatial import EARTH_RADIUS_M
from tests.settings import base_settings

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


def _source(name: str, kind: str, rows: list[tuple[str, float, float]]) -> PointSource:
    return PointSource(
        _frame(rows), PointSourceSettings(reader="vector", kind=kind, id_column="key")
    )


def _sampling(**overrides: Any) -> SamplingSettings:
    return base_settings(SamplingSettings, "ingest_points.sampling", **overrides)


def _split(**overrides: Any) -> SplitSettings:
    return base_settings(SplitSettings, "ingest_points.split", **overrides)


def test_build_regions_accepts_boxes_and_polygons_and_names_bad_entries():
    regions = nodes.build_regions(REGIONS)
    assert regions["name"].tolist() == ["box", "tri"] and regions.crs.to_epsg() == 4326
    with pytest.raises(ValueError, match=r"regions\[0\] \(x\): bbox"):
        nodes.build_regions([{"name": "x", "bbox": [1, 1, 0, 0]}])
    with pytest.raises(ValueError, match=r"regions\[1\]: .*unique name"):
        nodes.build_regions([REGIONS[0], REGIONS[0]])
    with pytest.raises(ValueError, match="exactly one of bbox or polygon"):
        nodes.build_regions([{"name": "y"}])
    with pytest.raises(ValueError, match="bbox"):
        nodes.build_regions([{"name": "z", "bbox": "north"}])


def test_sample_water_edge_points_asks_the_configured_source(monkeypatch):
    fake = FakeWaterSource()
    asked: list[dict] = []
    monkeypatch.setattr(
        nodes, "make_image_source", lambda cfg, seed: asked.append((cfg.kind, seed)) or fake
    )
    regions = nodes.build_regions(REGIONS)
    source = base_settings(ImageSourceSettings, "image_source")
    settings = base_settings(
        WaterEdgeSettings, "ingest_points.water_edges", sampling={"max_points_per_region": 3}
    )
    points = nodes.sample_water_edge_points(regions, source, settings, 7)
    assert asked == [("simulated", 7)]
    assert fake.calls[0][1] == settings.sampling.sampling(7)
    assert fake.calls[0][1].seed == 7 and fake.calls[0][1].max_points_per_region == 3
    assert points["region"].tolist() == ["box"] * 3 + ["tri"] * 3
    own_seed = base_settings(WaterEdgeSettings, "ingest_points.water_edges", sampling={"seed": 3})
    nodes.sample_water_edge_points(regions, source, own_seed, 7)
    assert fake.calls[1][1].seed == 3  # a sub-seed wins over the shared seed


def test_sample_water_edge_points_disabled_asks_nothing(monkeypatch):
    monkeypatch.setattr(nodes, "make_image_source", lambda cfg, seed: pytest.fail("asked"))
    settings = base_settings(WaterEdgeSettings, "ingest_points.water_edges", enabled=False)
    source = base_settings(ImageSourceSettings, "image_source")
    points = nodes.sample_water_edge_points(nodes.build_regions(REGIONS), source, settings, 1)
    assert points.empty


def test_random_points_are_seeded_and_inside_regions():
    regions = nodes.build_regions(REGIONS)
    shared = RandomNegativeSettings(count=50)
    first = nodes.sample_random_points(regions, shared, 1)
    again = nodes.sample_random_points(regions, RandomNegativeSettings(count=50, seed=1), 9)
    other = nodes.sample_random_points(regions, shared, 2)
    assert (
        len(first) == 50 and first.geom_equals(again).all() and not first.geom_equals(other).all()
    )
    union = regions.union_all()
    assert first.within(union).all()
    assert set(first["region"]) == {"box", "tri"}


def _candidates() -> tuple[gpd.GeoDataFrame, list[dict]]:
    dams = _source("dams", "dam", [("a", -100.0, 40.0), ("b", -100.0, 40.0 + 10 / DEGREE_M)])
    bridges = _source(
        "bridges",
        "bridge",
        [("near_dam_duplicate", -100.0, 40.0 + 5 / DEGREE_M), ("close", -100.0, 40.01),
         ("far", -99.0, 41.0)],
    )  # fmt: skip
    water = _frame([("w", -98.0, 41.0)]).drop(columns="key")
    random_points = _frame([("r", -97.0, 42.0), ("r2", -96.0, 42.0)]).drop(columns="key")
    return nodes.combine_candidates({"dams": dams, "bridges": bridges}, water, random_points)


def test_combine_candidates_stacks_sources_and_generated_negatives():
    candidates, summaries = _candidates()
    assert [s["source"] for s in summaries] == ["dams", "bridges", "water_edge", "random"]
    assert candidates["point_id"].tolist()[-3:] == ["water_edge:0", "random:0", "random:1"]
    assert candidates.crs.to_epsg() == 4326


def test_select_points_merges_across_sources_keeps_dams_and_drops_near_negatives():
    candidates, _ = _candidates()
    selected, stats = nodes.select_points(candidates, 20, 2000, _sampling(max_points=None), 0)
    assert selected["point_id"].tolist() == [
        "dams:a", "bridges:far", "water_edge:0", "random:0", "random:1"
    ]  # fmt: skip
    assert stats["merged_duplicates"]["removed_by_source"] == {"bridges": 1, "dams": 1}
    assert stats["merged_duplicates"]["groups_with_duplicates"] == 1
    assert stats["near_dam_dropped"]["by_kind"] == {"bridge": 1}


def test_select_points_caps_kinds_with_a_seed_and_explains_missing_shares():
    candidates, _ = _candidates()
    sampling = SamplingSettings(
        max_points=4, seed=0, fractions={"dam": 0.5, "random": 0.5}, uncapped=[]
    )
    with pytest.raises(ValueError, match="kind 'bridge' has no share in ingest_points.sampling"):
        nodes.select_points(candidates, 0, 0, sampling, 1)
    fractions = {"dam": 0.5, "random": 0.5, "bridge": 0.5, "water_edge": 0.5}
    sampling = SamplingSettings(max_points=4, fractions=fractions, uncapped=[])
    selected, stats = nodes.select_points(candidates, 0, 0, sampling, 0)
    again, _ = nodes.select_points(candidates, 0, 0, sampling, 0)
    assert selected["point_id"].tolist() == again["point_id"].tolist()
    assert selected["kind"].value_counts().to_dict() == {"dam": 1, "bridge": 1, "water_edge": 1,
                                                          "random": 1}  # fmt: skip
    assert stats["capped"]["dropped"] == {"bridge": 2, "dam": 1, "random": 1, "water_edge": 0}
    # An uncapped kind (a person's reviews) is kept whole, beside max_points.
    uncapped = SamplingSettings(max_points=4, fractions={"dam": 0.5, "random": 0.5},
                                uncapped=["bridge", "water_edge"])  # fmt: skip
    selected, stats = nodes.select_points(candidates, 0, 0, uncapped, 0)
    kinds = selected["kind"].value_counts().to_dict()
    assert kinds["bridge"] == 3 and kinds["dam"] + kinds["random"] == 4


def test_assign_splits_builds_the_points_table():
    candidates, summaries = _candidates()
    selected, selection = nodes.select_points(candidates, 50, 2000, _sampling(max_points=None), 0)
    split = _split(block_size_km=10, fractions={"train": 0.5, "val": 0.25, "test": 0.25})
    points, stats = nodes.assign_splits(selected, split, 0)
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
    selected, _ = nodes.select_points(candidates, 50, 2000, _sampling(max_points=None), 0)
    points, _ = nodes.assign_splits(selected, _split(block_size_km=10), 0)
    figure = nodes.plot_points_map(points)
    assert isinstance(figure, Figure)
    assert [axes.get_title() for axes in figure.axes] == ["points by kind", "points by split"]


def test_points_inside_the_scan_region_are_held_out_of_training(caplog):
    import shapely

    candidates, _ = _candidates()
    first = candidates.geometry.iloc[0]
    region = gpd.GeoDataFrame(geometry=[first.buffer(1e-4)], crs="EPSG:4326")
    with caplog.at_level("INFO"):
        kept = nodes.hold_out_scan_region(candidates, region, hold_out=True)
    assert len(kept) == len(candidates) - int(candidates.within(region.geometry.iloc[0]).sum())
    assert not kept.within(region.geometry.iloc[0]).any()
    assert "held out of training" in caplog.text
    assert len(nodes.hold_out_scan_region(candidates, region, hold_out=False)) == len(candidates)
    assert shapely.Point(first.x, first.y).within(region.geometry.iloc[0])
