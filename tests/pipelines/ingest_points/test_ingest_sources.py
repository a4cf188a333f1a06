"""Readers and row validation: every bad row is counted by reason, every config error explained."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import LineString, Point

from dam_detection.datasets.nbi_ascii import parse_nbi_lines
from dam_detection.datasets.point_sources import PointSourceSettings
from dam_detection.pipelines.ingest_points.nodes import read_source
from dam_detection.pipelines.ingest_points.sources import parse_dms, standardize_source
from tests.pipelines.ingest_points.test_ingest_datasets import nbi_line

VECTOR = {"reader": "vector", "kind": "dam", "id_column": "dam_id", "assumed_crs": "EPSG:4326"}


def _vector_rows() -> gpd.GeoDataFrame:
    frame = gpd.GeoDataFrame(
        {"dam_id": [1, 2, 3, 4, 5, 6, 1]},
        geometry=[
            Point(-100.0, 40.0),  # good
            None,  # empty geometry
            Point(),  # empty geometry
            LineString([(0, 0), (1, 1)]),  # not a point
            Point(-200.0, 40.0),  # out of range
            Point(np.inf, 40.0),  # non-finite
            Point(-101.0, 41.0),  # repeats id 1
        ],
        crs=None,
    )
    frame.attrs["source_file"] = "data/01_raw/dams.shp"
    return frame


def test_nbi_record_parses_to_known_coordinates():
    # 40°15'30.00" N, 100°30'15.00" W over a waterway (item 38 = 1).
    raw = parse_nbi_lines([nbi_line("40153000", "100301500", "1")], source_file="NE18.txt")
    points, summary = standardize_source(
        raw, "nbi_ascii", {"reader": "nbi_ascii", "kind": "bridge"}
    )
    assert points.geometry.y.iloc[0] == pytest.approx(40 + 15 / 60 + 30 / 3600, abs=1e-9)
    assert points.geometry.x.iloc[0] == pytest.approx(-(100 + 30 / 60 + 15 / 3600), abs=1e-9)
    assert points["point_id"].tolist() == ["nbi_ascii:031-C000123456"]
    assert points["name"].tolist() == ["PLATTE RIVER"]
    assert points["label"].tolist() == [0]
    assert summary["kept"] == 1


def test_nbi_keeps_only_bridges_over_waterways_and_counts_bad_dms():
    lines = [
        nbi_line(nav="1"),
        nbi_line(nav="0"),
        nbi_line(nav="N"),  # no waterway: filtered
        nbi_line(lat="00000000"),  # missing
        nbi_line(lat="40ab3000"),  # unparseable
        nbi_line(lon="100651500"),  # 65 minutes
    ]
    raw = parse_nbi_lines(lines, source_file="NE18.txt")
    raw["structure_number"] = [f"S{i}" for i in range(len(raw))]
    points, summary = standardize_source(raw, "nbi", {"reader": "nbi_ascii", "kind": "bridge"})
    assert len(points) == 2
    assert summary["filtered"] == {"not_over_waterway": 1}
    assert summary["rejected"] == {
        "invalid_dms": 1,
        "missing_coordinates": 1,
        "unparseable_coordinates": 1,
    }
    assert summary["examples"]["invalid_dms"] == ["line 6"]


def test_parse_dms_handles_seconds_in_hundredths():
    degrees, reason = parse_dms(pd.Series(["1230450", "12304512", ""]), degree_digits=2)
    assert reason.tolist() == ["unparseable_coordinates", "", "missing_coordinates"]
    assert degrees[1] == pytest.approx(12 + 30 / 60 + 45.12 / 3600)


def test_vector_rows_rejected_by_reason_with_examples():
    points, summary = standardize_source(_vector_rows(), "nid", {**VECTOR, "id_prefix": "nid"})
    assert points["point_id"].tolist() == ["nid:1"]
    assert summary["rows_in"] == 7 and summary["kept"] == 1
    assert summary["rejected"] == {
        "duplicate_id": 1,
        "empty_geometry": 2,
        "non_finite_coordinates": 1,
        "not_a_point": 1,
        "out_of_range": 1,
    }
    assert summary["examples"]["empty_geometry"] == ["feature 1", "feature 2"]
    assert summary["file"] == "data/01_raw/dams.shp"


def test_missing_crs_names_file_and_parameter():
    settings = {key: value for key, value in VECTOR.items() if key != "assumed_crs"}
    with pytest.raises(ValueError, match=r"dams\.shp has no CRS.*sources\.nid\.assumed_crs"):
        standardize_source(_vector_rows(), "nid", settings)


def test_projected_crs_is_reprojected_to_wgs84():
    frame = gpd.GeoDataFrame({"dam_id": [7]}, geometry=[Point(-100.0, 40.0)], crs=4326)
    points, _ = standardize_source(frame.to_crs(3857), "nid", VECTOR)
    assert points.crs.to_epsg() == 4326
    assert points.geometry.x.iloc[0] == pytest.approx(-100.0)
    assert points.geometry.y.iloc[0] == pytest.approx(40.0)


def test_table_reader_uses_configured_columns_and_counts_bad_rows():
    raw = pd.DataFrame(
        {
            "code": ["a", "b", "c", "d", "e"],
            "title": ["Lake Dam", " ", None, "x", "y"],
            "longitude": ["-100.0", "", "abc", "-99", "inf"],
            "latitude": [40.0, 41.0, 41.0, 95.0, 40.0],
        }
    )
    raw.attrs["source_file"] = "dams.csv"
    settings = {
        "reader": "table", "kind": "dam", "id_column": "code", "name_column": "title",
        "lon_column": "longitude", "lat_column": "latitude",
    }  # fmt: skip
    points, summary = standardize_source(raw, "csv_dams", settings)
    assert points["point_id"].tolist() == ["csv_dams:a"]
    assert points["name"].tolist() == ["Lake Dam"]
    assert summary["rejected"] == {
        "missing_coordinates": 1,
        "non_finite_coordinates": 1,
        "out_of_range": 1,
        "unparseable_coordinates": 1,
    }
    assert summary["examples"]["unparseable_coordinates"] == ["line 4"]  # after the header


def test_missing_column_names_file_column_and_parameter():
    raw = pd.DataFrame({"lon": [1.0], "lat": [2.0]})
    raw.attrs["source_file"] = "dams.csv"
    with pytest.raises(KeyError, match=r"dams\.csv: column 'x'.*sources\.mine\.lon_column"):
        standardize_source(raw, "mine", {"reader": "table", "kind": "dam", "lon_column": "x"})


def test_csv_read_as_vector_explains_the_table_reader():
    raw = pd.DataFrame({"lon": [1.0], "lat": [2.0]})
    with pytest.raises(TypeError, match=r"sources\.mine\.reader to 'table'"):
        standardize_source(raw, "mine", {"reader": "vector", "kind": "dam"})


def test_unknown_reader_and_missing_kind_are_explained():
    raw = pd.DataFrame({"lon": [1.0], "lat": [2.0]})
    with pytest.raises(ValueError, match=r"sources\.mine\.reader"):
        standardize_source(raw, "mine", {"reader": "excel", "kind": "dam"})
    with pytest.raises(ValueError, match=r"sources\.mine\.kind"):
        standardize_source(raw, "mine", {"reader": "table"})


def test_read_source_node_tags_the_summary():
    _, summary = read_source(_vector_rows(), PointSourceSettings(**VECTOR), source="nid")
    assert summary["source"] == "nid"
