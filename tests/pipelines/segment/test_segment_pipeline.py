"""The ``segment`` pipeline end to end in a KedroSession (test env) on tiny scenes."""

from __future__ import annotations

import json

import geopandas as gpd
import keras
import numpy as np
import pyproj
import shapely
import yaml

from dam_detection.datasets.geotiff import read_geotiff
from dam_detection.model_metadata import model_metadata
from tests.conftest import run_kedro
from tests.pipelines.segment.scenes import BANDS, MIXER, UNIT_STATS, padded_mosaic, write_scene
from tests.pipelines.segment.test_segment_stitch import (
    FCN_METADATA,
    HALF_X,
    HALF_Y,
    centre_value_classifier,
    first_channel_model,
)
from tests.settings import base_parameters

#: Mosaic pixels (row, col) of the two dam walls: one inside a patch, one on a patch corner.
DAMS_PX = [(40, 24), (64, 64)]
#: What ``segment`` reads, should the pipelines that write them not declare them in conf/.
INPUTS = {
    "fcn_model": {"type": "dam_detection.datasets.KerasModelDataset",
                  "filepath": "data/06_models/fcn.keras"},
    "classifier_model": {"type": "dam_detection.datasets.KerasModelDataset",
                         "filepath": "data/06_models/classifier.keras"},
    "fcn_model_metadata": {"type": "json.JSONDataset", "filepath": "data/06_models/fcn.json"},
    "classifier_model_metadata": {"type": "json.JSONDataset",
                                  "filepath": "data/06_models/classifier.json"},
    "band_stats": {"type": "json.JSONDataset", "filepath": "data/05_model_input/stats.json"},
    "train_metrics": {"type": "json.JSONDataset",
                      "filepath": "data/08_reporting/train_metrics.json"},
    "points": {"type": "dam_detection.datasets.VectorPointsDataset",
               "filepath": "data/03_primary/points.parquet"},
    "scenes": {"type": "dam_detection.datasets.ImageExportDataset",
               "filepath": "data/02_intermediate/scenes/"},
}  # fmt: skip


def dams_lonlat() -> gpd.GeoSeries:
    xy = [MIXER.pixel_to_crs(col + 0.5, row + 0.5) for row, col in DAMS_PX]
    return gpd.GeoSeries(gpd.points_from_xy(*zip(*xy, strict=True)), crs=MIXER.crs).to_crs(4326)


def blob_scene() -> np.ndarray:
    """Faint noise in band 0 with a bright Gaussian blob (peak 0.9) on each dam wall."""
    padded = padded_mosaic(seed=7)
    rows, cols = np.indices(padded.shape[:2])
    band = padded[..., 0] * 0.05
    for row, col in DAMS_PX:
        distance2 = (rows - row - HALF_Y) ** 2 + (cols - col - HALF_X) ** 2
        band = np.maximum(band, 0.9 * np.exp(-distance2 / (2 * 3.0**2)))
    padded[..., 0] = band
    return padded


def declare_missing_inputs(project) -> None:
    declared = set()
    for env in ("base", "test"):
        for path in (project / "conf" / env).glob("catalog*.yml"):
            declared |= set(yaml.safe_load(path.read_text()) or {})
    missing = {name: entry for name, entry in INPUTS.items() if name not in declared}
    if missing:
        (project / "conf" / "base" / "catalog_zz_segment_inputs.yml").write_text(yaml.dump(missing))


def test_segment_run_writes_and_evaluates_every_scene(kedro_project):
    project = kedro_project
    declare_missing_inputs(project)
    data = project / "data"
    scenes = data / "02_intermediate" / "scenes"
    walls = dams_lonlat()
    truth = gpd.GeoDataFrame(
        {"kind": ["dam_wall", "dam_wall", "reservoir"], "dam_id": [1, 2, 1]},
        geometry=[*walls, shapely.box(*walls.iloc[0].buffer(0.001).bounds)], crs="EPSG:4326",
    )  # fmt: skip
    write_scene(scenes, "simulated", blob_scene(), truth=truth)
    write_scene(scenes, "real", blob_scene())  # no truth: judged against the points table
    (data / "06_models").mkdir(parents=True)
    first_channel_model().save(data / "06_models" / "fcn.keras")
    centre_value_classifier(33).save(data / "06_models" / "classifier.keras")
    (data / "06_models" / "fcn.json").write_text(json.dumps(FCN_METADATA))
    classifier = model_metadata("classifier", BANDS, 16, None, input_size_px=33)
    (data / "06_models" / "classifier.json").write_text(json.dumps(classifier))
    (data / "05_model_input").mkdir(parents=True)
    (data / "05_model_input" / "stats.json").write_text(json.dumps({"bands": UNIT_STATS}))
    # The thresholds `train` chose on validation data, which `detection.threshold: validation`
    # (the base setting) uses; train chose the FCN's on maps averaged over this run's views.
    views = base_parameters("test")["detection"]["views"]
    (data / "08_reporting").mkdir(parents=True)
    chosen = {"fcn": {"detection": {"threshold": 0.3, "views": views}},
              "classifier": {"threshold": 0.3}}  # fmt: skip
    (data / "08_reporting" / "train_metrics.json").write_text(json.dumps(chosen))
    (data / "03_primary").mkdir(parents=True)
    far = gpd.points_from_xy([10.0], [50.0], crs="EPSG:4326")  # a dam in another scene
    gpd.GeoDataFrame(
        {"point_id": ["t:1", "t:2", "t:3", "t:4"], "point_index": [0, 1, 2, 3],
         "source": "test", "kind": ["dam", "dam", "bridge", "dam"], "label": [1, 1, 0, 1],
         "name": None, "split": "test"},
        geometry=[*walls, walls.iloc[0], far[0]], crs="EPSG:4326",
    ).to_parquet(data / "03_primary" / "points.parquet")  # fmt: skip

    # Candidates down to 0.01: the faint noise peaks join the curve, not the detections.
    outputs = run_kedro(
        project, ["segment"], params={"segment": {"evaluation": {"score_floor": 0.01}}}
    )

    summary = outputs["segment_summary"]
    summary = summary.load() if hasattr(summary, "load") else summary  # kedro 1.x returns datasets
    assert summary["scenes"] == 2 and summary["known_dams"] == 4
    assert summary["fcn"]["recall"] == 1.0 and summary["fcn"]["precision"] == 1.0
    metrics = json.loads((data / "08_reporting" / "segment_metrics.json").read_text())
    assert set(metrics["fcn"]["per_scene"]) == {"real", "simulated"}
    assert metrics["detection"]["fcn"] == {
        "threshold": 0.3, "min_distance_px": 4.0, "smoothing_px": 0.0, "source": "validation"
    }  # fmt: skip
    assert metrics["baseline"]["stride_px"] == 8 and metrics["speedup_same_resolution"] > 0
    # The curves run over every candidate peak down to the floor, not only the operating point.
    curve = metrics["fcn"]["overall"]["150"]
    assert min(row["threshold"] for row in curve) < 0.3 <= max(row["threshold"] for row in curve)
    assert len(curve) > 10 and metrics["score_floor"] == 0.01
    assert metrics["fcn"]["detections"] == 4  # two per scene, at the operating threshold
    assert (data / "08_reporting" / "segment_precision_recall.png").stat().st_size > 0
    for scene in ("real", "simulated"):
        heat = read_geotiff(data / "07_model_output" / "heatmaps" / f"{scene}.tif")
        assert heat.crs == MIXER.crs and heat.affine == MIXER.affine
        assert heat.data.shape == (MIXER.height_px, MIXER.width_px)
        detections = json.loads(
            (data / "07_model_output" / "detections" / f"{scene}.geojson").read_text()
        )
        assert len(detections["features"]) == 2
        first = detections["features"][0]["properties"]
        assert first["detection_id"] == f"{scene}:0000" and first["model"] == "f" * 16
        found = gpd.GeoDataFrame.from_features(detections["features"], crs="EPSG:4326")
        distance = found.to_crs(MIXER.crs).distance(walls.to_crs(MIXER.crs).iloc[0]).min()
        assert distance < 1.0  # the blob's centre pixel
        assert (data / "08_reporting" / "segment_overlays" / f"{scene}.png").stat().st_size > 0
        close_ups = data / "08_reporting" / "segment_close_ups" / f"{scene}.png"
        assert close_ups.read_bytes().startswith(b"\x89PNG")
        folder = data / "07_model_output" / "predictions" / scene
        assert sorted(p.name for p in folder.iterdir()) == [
            "predictions-00000.TFRecord",
            "predictions-mixer.json",
        ]
    assert pyproj.CRS(heat.crs).to_epsg() == 32614
    assert len(BANDS) == keras.models.load_model(data / "06_models" / "fcn.keras").input_shape[-1]
