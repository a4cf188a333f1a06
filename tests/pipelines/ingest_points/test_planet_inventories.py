"""The planet publishes inventories users' readers read, and never overwrites a user's file."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from kedro.io import DatasetError

from dam_detection.datasets import PointSourcesDataset
from dam_detection.detection.settings import DetectionSettings
from dam_detection.image_sources.simulated.publish import (
    InventoryRules,
    PositionErrors,
    planet_structures,
    publish,
)
from dam_detection.image_sources.simulated.world import Density, Planet
from dam_detection.pipelines.ingest_points.nodes import read_source
from dam_detection.pipelines.ingest_points.planet import (
    PUBLISHED_SOURCES,
    audit_points,
    publish_planet_inventories,
)
from tests.settings import simulated_source

AREA = shapely.box(-110.42, 37.68, -110.30, 37.78)
PLANET = Planet(seed=5, tile_px=256, density=Density(dams=80.0, bridges=40.0))


@pytest.fixture(scope="module")
def publication():
    return publish(PLANET, AREA, InventoryRules())


def test_inventories_miss_dams_and_place_points_off_their_walls(publication) -> None:
    truth = publication.truth
    assert len(truth) >= 20 and truth["dam_id"].is_unique
    listed = truth[truth["listed_national"]]
    assert 0.4 < len(listed) / len(truth) < 0.95  # 70% listed by default
    offsets = listed["listed_offset_m"].to_numpy()
    assert np.median(offsets) < 150 and offsets.max() > 10  # near the wall, never exactly on it
    national = publication.national_dams
    assert national["DAM_ID"].is_unique and len(national) >= len(listed)
    assert any(not name.isascii() for name in national["DAM_NAME"])


def test_no_dam_is_listed_when_the_share_is_zero_and_errors_vanish_without_spread() -> None:
    none = publish(PLANET, AREA, InventoryRules(listed_share=0.0, large_listed_share=0.0))
    assert none.national_dams.empty and not none.truth["listed_national"].any()
    exact = publish(
        PLANET,
        AREA,
        InventoryRules(
            listed_share=1.0,
            duplicate_share=0.0,
            errors=PositionErrors(sigma_m=0.0, tail_share=0.0, on_reservoir_share=0.0),
        ),
    )
    assert exact.truth["listed_offset_m"].max() < 1.0


def test_published_files_read_back_with_the_users_readers(tmp_path: Path, publication) -> None:
    folder = tmp_path / "planet"
    entries = {
        "planet_dams": {
            "dataset": {"type": "dam_detection.datasets.VectorPointsDataset",
                        "filepath": str(folder / "national.gpkg")},
            "published_by": "planet", "reader": "vector", "kind": "dam",
            "id_column": "DAM_ID", "name_column": "DAM_NAME",
        },
        "planet_large_dams": {
            "dataset": {"type": "dam_detection.datasets.VectorPointsDataset",
                        "filepath": str(folder / "grand.csv")},
            "published_by": "planet", "inventory": "grand", "reader": "table",
            "lon_column": "LONG_DD", "lat_column": "LAT_DD",
        },
        "planet_bridges": {
            "dataset": {"type": "dam_detection.datasets.NBIAsciiDataset",
                        "filepath": str(folder / "bridges.txt")},
            "published_by": "planet", "inventory": "nbi",
        },
    }  # fmt: skip
    dataset = PointSourcesDataset(sources=entries)
    content = dict(
        zip(
            PUBLISHED_SOURCES,
            (publication.national_dams, publication.large_dams, publication.bridges_nbi),
            strict=True,
        )
    )
    dataset.save(content)
    loaded = dataset.load()
    dams, summary = read_source(loaded["planet_dams"].frame, loaded["planet_dams"].settings, "d")
    assert summary["kept"] == len(publication.national_dams) and not summary["rejected"]
    assert set(dams["name"]) == set(publication.national_dams["DAM_NAME"])
    bridges, summary = read_source(
        loaded["planet_bridges"].frame, loaded["planet_bridges"].settings, "b"
    )
    assert len(bridges) == publication.bridges_nbi.count("\n") > 0
    # NBI degrees-minutes-seconds with hundredths (west positive) come back within a metre.
    _, truth_bridges, _ = planet_structures(PLANET, AREA)
    read = np.array([[p.x, p.y] for p in bridges.geometry])
    nearest = np.min(
        np.hypot(*(read[:, None, :] - truth_bridges[None, :, :]).transpose(2, 0, 1)), 1
    )
    assert nearest.max() < 1.0 / 111_000 * 1.5  # degrees


def test_a_users_inventory_is_never_written(tmp_path: Path) -> None:
    mine = tmp_path / "mine.geojson"
    dataset = PointSourcesDataset(
        sources={
            "my_dams": {
                "dataset": {"type": "dam_detection.datasets.VectorPointsDataset",
                            "filepath": str(mine)},
                "reader": "vector", "kind": "dam",
            }
        }
    )  # fmt: skip
    with pytest.raises(DatasetError, match="user's inventory.*never written"):
        dataset.save({"my_dams": gpd.GeoDataFrame(geometry=[], crs=4326)})
    assert not mine.exists()
    dataset.save({"planet_dams": gpd.GeoDataFrame(geometry=[], crs=4326)})  # not declared: skipped
    assert not mine.exists()


def test_the_node_publishes_for_the_regions_and_the_scan_region_or_nothing() -> None:
    west, south, east, north = AREA.bounds
    half = shapely.box(west, south, (west + east) / 2, north)
    regions = gpd.GeoDataFrame({"name": ["r"]}, geometry=[half], crs=4326)
    scan = gpd.GeoDataFrame({"name": ["s"]}, geometry=[AREA.difference(half)], crs=4326)
    source = simulated_source(seed=5, density={"dams": 80.0, "bridges": 40.0})
    published, truth, lookalikes = publish_planet_inventories(regions, scan, source, 42)
    assert set(published) == set(PUBLISHED_SOURCES) and len(truth) >= 20
    assert (lookalikes["kind"] == "bridge").sum() >= 10
    # The scan's region is published too: the scan matches its detections to those inventories.
    in_scan = truth.within(scan.geometry.iloc[0])
    assert in_scan.any() and (~in_scan).any()
    national = published["planet_dams"]
    assert national["DAM_ID"].is_unique
    # ... on its own: the training regions' files are what they were without a scan.
    alone, _, _ = publish_planet_inventories(regions, regions.iloc[0:0], source, 42)
    pd.testing.assert_frame_equal(
        pd.DataFrame(national.iloc[: len(alone["planet_dams"])]),
        pd.DataFrame(alone["planet_dams"]),
    )
    quiet = simulated_source(inventories={"publish": False})
    published, truth, lookalikes = publish_planet_inventories(regions, scan, quiet, 42)
    assert published == {} and truth.empty and lookalikes.empty


def test_the_audit_counts_negatives_on_dams_no_inventory_lists(publication) -> None:
    truth = publication.truth
    unlisted = truth[~truth["listed_national"]].iloc[0].geometry
    listed = truth[truth["listed_national"]].iloc[0].geometry
    points = gpd.GeoDataFrame(
        {"point_id": ["a", "b", "c"], "kind": ["random", "water_edge", "dam"], "label": [0, 0, 1]},
        geometry=[unlisted, shapely.Point(-110.0, 37.0), listed],
        crs=4326,
    )
    detection = DetectionSettings(
        min_distance_px=10, smoothing_px=0.0, views=1, tolerance_m=150.0, threshold_beta=1.0
    )
    audit = audit_points(points, truth, detection)
    assert audit["negatives"] == 2 and audit["negatives_on_a_dam"] == 1
    assert audit["negatives_on_an_unlisted_dam"] == 1
    assert audit["negatives_on_a_dam_by_kind"] == {"random": 1}
    assert audit["dam_points"] == 1 and audit["dam_point_to_wall_m"]["max"] < 1.0
    assert "none" in audit_points(points, truth.iloc[0:0], detection)["truth"]
