"""The ``scan`` pipeline end to end in a KedroSession (test env): a small region of the planet,
one Dask worker, then a resumed run."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely

from dam_detection.datasets import VectorPointsDataset
from dam_detection.image_sources.base import make_image_source
from dam_detection.image_sources.settings import ImageSourceSettings
from dam_detection.image_sources.simulated.world import tile_features, tiles_covering, to_zone
from dam_detection.model_metadata import model_metadata
from dam_detection.pipelines.scan.region import build_scan_region
from dam_detection.pipelines.scan.settings import RegionSettings
from dam_detection.pipelines.train.models import receptive_field
from tests.conftest import run_kedro
from tests.pipelines.scan.helpers import BANDS, STATS, tiny_fcn
from tests.settings import base_parameters

EPSG = 32614


def planet_dams(bbox: list[float]) -> gpd.GeoDataFrame:
    """The test planet's dams inside ``bbox``: its truth."""
    params = base_parameters("test")
    source = make_image_source(
        ImageSourceSettings.model_validate(params["image_source"]), params["seed"]
    )
    planet = source.planet  # type: ignore[attr-defined]
    xs, ys = to_zone(EPSG).transform([bbox[0], bbox[2]], [bbox[1], bbox[3]])
    bounds = (min(xs), min(ys), max(xs), max(ys))
    dams = [d for key in tiles_covering(planet, EPSG, bounds)
            for d in tile_features(planet, key).dams]  # fmt: skip
    lon, lat = to_zone(EPSG).transform([d.x for d in dams], [d.y for d in dams],
                                       direction="INVERSE")  # fmt: skip
    truth = gpd.GeoDataFrame(
        {"dam_id": [d.dam_id for d in dams]}, geometry=gpd.points_from_xy(lon, lat), crs=4326
    )
    return truth[truth.within(shapely.box(*bbox))].reset_index(drop=True)


def write_inputs(project, bbox: list[float]) -> gpd.GeoDataFrame:
    data = project / "data"
    model = tiny_fcn()
    (data / "06_models").mkdir(parents=True, exist_ok=True)
    model.save(data / "06_models" / "fcn.keras")
    metadata = model_metadata("fcn", BANDS, 16, receptive_field(model), None)
    (data / "06_models" / "fcn.json").write_text(json.dumps(metadata))
    (data / "05_model_input").mkdir(parents=True, exist_ok=True)
    (data / "05_model_input" / "stats.json").write_text(json.dumps({"bands": STATS}))
    (data / "08_reporting").mkdir(parents=True, exist_ok=True)
    # The thresholds train chose, on heatmaps averaged over as many views as this run uses.
    views = base_parameters("test")["detection"]["views"]
    chosen = {"threshold": 0.6, "views": views, "confirmation": {"threshold": 0.3}}
    (data / "08_reporting" / "train_metrics.json").write_text(
        json.dumps({"fcn": {"detection": chosen}})
    )
    region = build_scan_region(RegionSettings(name="test_region", bbox=bbox, file=None))
    VectorPointsDataset(filepath=str(data / "03_primary/scan_region.geojson")).save(region)
    truth = planet_dams(bbox)
    listed = np.arange(len(truth)) % 2 == 0
    truth = truth.assign(listed_national=listed, listed_large=False)
    VectorPointsDataset(filepath=str(data / "02_intermediate/planet_truth.geojson")).save(truth)
    lookalikes = gpd.GeoDataFrame(
        {"kind": ["quarry"]}, geometry=gpd.points_from_xy([bbox[0]], [bbox[1]]), crs=4326
    )
    VectorPointsDataset(filepath=str(data / "02_intermediate/planet_lookalikes.geojson")).save(
        lookalikes
    )
    inventory = gpd.GeoDataFrame(
        {"point_id": [f"national:{i}" for i in truth["dam_id"][listed]],
         "source": "planet_dams", "name": None},
        geometry=truth.geometry[listed].to_numpy(), crs=4326,
    )  # fmt: skip
    VectorPointsDataset(filepath=str(data / "03_primary/inventory_dams.parquet")).save(inventory)
    # One listed bridge, far from both dams: no detection is taken for it.
    bridges = gpd.GeoDataFrame(
        {"point_id": ["nbi:1"], "source": "planet_bridges", "name": None},
        geometry=gpd.points_from_xy([bbox[0] - 0.1], [bbox[1] - 0.1]), crs=4326,
    )  # fmt: skip
    VectorPointsDataset(filepath=str(data / "03_primary/inventory_bridges.parquet")).save(bridges)
    return truth


def test_scan_run_writes_candidates_review_page_metrics_and_resumes(kedro_project):
    project = kedro_project
    bbox = [-99.675, 40.355, -99.64, 40.375]  # 3 x 2.2 km around two of the planet's dams
    truth = write_inputs(project, bbox)
    assert len(truth) == 2
    run_kedro(project, ["scan"])
    out = project / "data" / "07_model_output" / "scan"
    gpkg = VectorPointsDataset(filepath=str(out / "candidates.gpkg")).load()
    geojson = VectorPointsDataset(filepath=str(out / "candidates.geojson")).load()
    csv = pd.read_csv(out / "candidates.csv")
    assert len(gpkg) > 0
    assert gpkg["id"].tolist() == geojson["id"].tolist() == csv["id"].tolist()
    assert set(gpkg["status"]) <= {"known", "candidate"}
    assert gpkg["rank"].tolist() == list(range(1, len(gpkg) + 1))
    assert gpkg.within(shapely.box(*bbox)).all()  # only the region's detections
    known = gpkg[gpkg["status"] == "known"]
    assert known["matched_id"].notna().all() and known["inventory"].eq("planet_dams").all()
    # The review page shows every candidate with its chip.
    review = project / "data" / "08_reporting" / "scan_review"
    candidates = gpkg[gpkg["status"] == "candidate"]["id"]
    assert {p.stem for p in (review / "chips").glob("*.png")} == set(candidates)
    assert "Confirm (c)" in (review / "index.html").read_text()
    # The region's heatmap opens as one layer.
    tiles = gpd.read_file(out / "tiles.geojson")
    with rasterio.open(out / "heatmap.vrt") as vrt:
        assert vrt.crs.to_epsg() == EPSG
        assert vrt.width * vrt.height == len(tiles) * 64 * 64
        heat = vrt.read(1)
        assert heat.min() >= 0.0 and heat.max() <= 1.0
    metrics = json.loads((project / "data/08_reporting/scan_metrics.json").read_text())
    assert metrics["tiles_scanned"] == len(tiles) and metrics["tiles_skipped"] == 0
    assert metrics["workers"] == 1
    detection = base_parameters("test")["detection"]
    assert (metrics["views"], metrics["smoothing_px"]) == (detection["views"],
                                                           detection["smoothing_px"])  # fmt: skip
    evaluation = metrics["evaluation"]
    assert (evaluation["dams"], evaluation["listed_dams"], evaluation["unlisted_dams"]) == (2, 1, 1)
    assert evaluation["candidates"] == len(candidates)
    assert metrics["computed_over_output_area"] > 1.0
    spent = metrics["tile_seconds"]
    assert spent["reading"] >= 0 and spent["predicting"] > 0 and spent["other"] >= 0
    assert spent["reading"] + spent["predicting"] + spent["other"] == pytest.approx(
        spent["total"], abs=0.05
    )
    assert 0 < spent["slowest_tile"] <= spent["total"] <= metrics["wall_seconds"]
    summary = json.loads((project / "data/08_reporting/scan_summary.json").read_text())
    assert f"{len(candidates)} candidates" in summary["text"]

    # A scan stopped halfway: two tiles never finished. The re-run redoes only those two and
    # gives the same candidates.
    for tile_id in tiles["tile_id"][:2]:
        (out / "done" / f"{tile_id}.json").unlink()
    run_kedro(project, ["scan"])
    resumed = json.loads((project / "data/08_reporting/scan_metrics.json").read_text())
    assert (resumed["tiles_scanned"], resumed["tiles_skipped"]) == (2, len(tiles) - 2)
    again = VectorPointsDataset(filepath=str(out / "candidates.gpkg")).load()
    pd.testing.assert_frame_equal(pd.DataFrame(again), pd.DataFrame(gpkg))
