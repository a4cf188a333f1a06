"""ingest_points through a real KedroSession, on tiny generated inputs in the test environment."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
from kedro.framework.project import settings
from kedro.framework.startup import bootstrap_project
from shapely.geometry import Point

from dam_detection.pipelines.ingest_points import nodes
from tests.conftest import run_kedro
from tests.pipelines.ingest_points.test_ingest_nodes import FakeWaterSource


def _write_inputs(project: Path) -> None:
    """30 dams (one bad, one duplicate) and 12 bridges (one bad) inside the test region."""
    folder = project / "data" / "01_raw" / "test_points"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(5)
    lon, lat = rng.uniform(-100, -99, 30), rng.uniform(40, 41, 30)
    geometry = [Point(x, y) for x, y in zip(lon, lat, strict=True)]
    geometry[3] = Point(-250.0, 40.5)  # out of range
    geometry[4] = Point(lon[5], lat[5] + 1e-5)  # 1 m from dam 5: merged
    dams = gpd.GeoDataFrame({"FID": range(30)}, geometry=geometry, crs=4326)
    dams.to_file(folder / "dams.geojson", driver="GeoJSON", engine="pyogrio")
    rows = ["bridge_id,name,lon,lat"]
    rows += [f"b{i},Bridge {i},{-99.9 + 0.07 * i:.4f},{40.95 - 0.07 * i:.4f}" for i in range(11)]
    rows.append("b11,Broken,,40.5")
    (folder / "bridges.csv").write_text("\n".join(rows) + "\n")


@pytest.fixture
def fake_water(monkeypatch: pytest.MonkeyPatch) -> FakeWaterSource:
    fake = FakeWaterSource()
    monkeypatch.setattr(nodes, "make_image_source", lambda config, seed: fake)
    return fake


def test_pipeline_run_writes_points_report_and_map(kedro_project: Path, fake_water):
    _write_inputs(kedro_project)
    run_kedro(kedro_project, ["ingest_points"])

    points = gpd.read_parquet(kedro_project / "data" / "03_primary" / "points.parquet")
    assert list(points.columns) == list(nodes.POINT_COLUMNS)
    assert points.crs.to_epsg() == 4326
    assert points["point_id"].is_unique
    assert points["point_index"].tolist() == list(range(len(points)))
    assert set(points["kind"]) == {"dam", "bridge", "water_edge", "random"}
    assert (points.loc[points["kind"] == "dam", "label"] == 1).all()
    assert "nbi:b0" in set(points["point_id"]) or "nbi:b1" in set(points["point_id"])
    assert len(fake_water.calls) == 1 and fake_water.calls[0][1].max_points_per_region == 10

    report = json.loads((kedro_project / "data/08_reporting/ingest_points_report.json").read_text())
    assert report["rows_in"] == 30 + 12 + 10 + 20
    assert report["sources"]["nid_dams"]["rejected"] == {"out_of_range": 1}
    assert report["sources"]["nbi_bridges"]["rejected"] == {"missing_coordinates": 1}
    assert report["sources"]["nbi_bridges"]["examples"] == {"missing_coordinates": ["line 13"]}
    assert report["merged_duplicates"]["removed_by_source"].get("nid_dams", 0) >= 1
    assert report["points_out"] == len(points) <= 40
    assert sum(report["counts"]["split"].values()) == len(points)
    assert report["split"]["block_size_km"] == 10.0
    png = (kedro_project / "data/08_reporting/points_map.png").read_bytes()
    assert png.startswith(b"\x89PNG")
    # Every run writes its own log file, one record per line.
    (log,) = (kedro_project / "data/08_reporting/logs").glob("*.log")
    text = log.read_text()
    assert "Running node: assign_splits" in text and "Pipeline execution completed" in text


def test_runtime_parameter_changes_the_run(kedro_project: Path, fake_water):
    _write_inputs(kedro_project)
    run_kedro(
        kedro_project, ["ingest_points"], params={"ingest_points": {"sampling": {"max_points": 8}}}
    )
    points = gpd.read_parquet(kedro_project / "data" / "03_primary" / "points.parquet")
    assert len(points) <= 8 and (points["kind"] == "dam").sum() == 4


def test_test_environment_overrides_one_leaf_and_keeps_its_siblings(kedro_project: Path):
    # The project's own config loader and settings, as a KedroSession builds them (without
    # the session, so that this test does not depend on other pipelines importing cleanly).
    bootstrap_project(kedro_project)
    loader = settings.CONFIG_LOADER_CLASS(
        conf_source=str(kedro_project / "conf"), env="test", **settings.CONFIG_LOADER_ARGS
    )
    params = loader["parameters"]["ingest_points"]
    assert params["sampling"]["max_points"] == 40  # conf/test leaf
    assert params["sampling"]["fractions"]["dam"] == 0.5  # conf/base sibling survives
    assert params["split"]["fractions"]["train"] == 0.7


def test_an_environment_of_its_own_adds_a_source(kedro_project: Path, fake_water):
    # `kedro run --env other` with a source that only conf/other declares: the pipeline is
    # built without reading configuration, so no KEDRO_ENV is needed.
    _write_inputs(kedro_project)
    other = kedro_project / "conf" / "other"
    shutil.copytree(kedro_project / "conf" / "test", other)
    extra = gpd.GeoDataFrame({"grand_id": [7]}, geometry=[Point(-99.2, 40.2)], crs=4326)
    extra.to_file(kedro_project / "data/01_raw/test_points/grand.geojson", engine="pyogrio")
    catalog = other / "catalog_ingest_points.yml"
    catalog.write_text(
        catalog.read_text()
        + """    grand_dams:
      dataset:
        type: dam_detection.datasets.VectorPointsDataset
        filepath: data/01_raw/test_points/grand.geojson
      reader: vector
      kind: dam
      id_prefix: grand
      id_column: grand_id
"""
    )
    assert "KEDRO_ENV" not in os.environ
    run_kedro(kedro_project, ["ingest_points"], env="other")
    report = json.loads((kedro_project / "data/08_reporting/ingest_points_report.json").read_text())
    assert list(report["sources"]) == ["nid_dams", "nbi_bridges", "grand_dams", "water_edge",
                                       "random"]  # fmt: skip
    assert report["sources"]["grand_dams"]["kept"] == 1
