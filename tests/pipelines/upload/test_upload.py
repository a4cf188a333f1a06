"""The upload pipeline: heatmap manifests asserted, files staged, ingestions started (faked)."""

from __future__ import annotations

import json

import ee
import numpy as np
import pytest
from kedro.io import DatasetError

from dam_detection.datasets.earthengine_ingestion import EarthEngineIngestionDataset
from dam_detection.datasets.geotiff import GeoRaster, read_geotiff
from dam_detection.image_sources.settings import ImageSourceSettings
from dam_detection.pipelines.upload.nodes import plan_heatmap_ingestion
from dam_detection.pipelines.upload.settings import UploadSettings
from tests.settings import base_settings

FOLDER = "projects/dams-on-ee/assets/heatmaps"
METADATA = {"weights_sha256": "ab12", "bands": ["B2", "B3", "B4", "NDWI", "AVE"]}


def heatmap(value: float) -> GeoRaster:
    data = np.full((32, 48), value, np.float32)
    data[0, :4] = -1.0  # no data where the scene had none
    return GeoRaster(data, "EPSG:32612", (10.0, 0.0, 500000.0, 0.0, -10.0, 3700000.0), nodata=-1.0)


class FakeIngestion:
    """``ee.data.newTaskId`` and ``ee.data.startIngestion``, recorded; refuses named assets."""

    def __init__(self, refuse: str | None = None) -> None:
        self.calls: list[tuple[str, dict, bool]] = []
        self.refuse = refuse

    def install(self, monkeypatch: pytest.MonkeyPatch) -> FakeIngestion:
        monkeypatch.setattr(ee.data, "newTaskId", lambda count=1: [f"ID{len(self.calls)}"])
        monkeypatch.setattr(ee.data, "startIngestion", self.start)
        return self

    def start(self, request_id: str, params: dict, allow_overwrite: bool = False) -> dict:
        if self.refuse and params["name"].endswith(self.refuse):
            raise ee.EEException(f"Cannot overwrite asset '{params['name']}'.")
        self.calls.append((request_id, params, allow_overwrite))
        return {"id": f"TASK{request_id}", "started": "OK"}


def plan(tmp_path, **overrides):
    settings = base_settings(
        UploadSettings, "upload", asset_folder=FOLDER, staging_url="gs://exports/uploads",
        write_url=(tmp_path / "bucket" / "uploads").as_uri(), **overrides,
    )  # fmt: skip
    source = base_settings(ImageSourceSettings, "image_source")
    heatmaps = {"ozarks": lambda: heatmap(0.25), "lake": lambda: heatmap(0.75)}
    return plan_heatmap_ingestion(heatmaps, METADATA, source, settings)


def test_each_heatmap_becomes_an_image_manifest(tmp_path):
    plans = plan(tmp_path)
    assert list(plans) == ["lake", "ozarks"]
    assert plans["lake"].manifest == {
        "name": f"{FOLDER}/lake_dam_probability",
        "tilesets": [{"id": "heatmap", "sources": [{"uris": ["gs://exports/uploads/lake.tif"]}]}],
        "bands": [
            {"id": "dam_probability", "tilesetId": "heatmap", "tilesetBandIndex": 0,
             "pyramidingPolicy": "MEAN"}
        ],
        "missingData": {"values": [-1.0]},
        "properties": {"source": "dam_detection", "model_weights_sha256": "ab12",
                       "model_bands": "B2,B3,B4,NDWI,AVE", "scene": "lake"},
    }  # fmt: skip


def test_saving_stages_the_files_and_starts_the_ingestions(tmp_path, monkeypatch):
    fake = FakeIngestion().install(monkeypatch)
    report = tmp_path / "report.json"
    EarthEngineIngestionDataset(report_path=str(report)).save(plan(tmp_path, overwrite=True))
    staged = read_geotiff(tmp_path / "bucket" / "uploads" / "lake.tif")
    assert staged.nodata == -1.0 and np.allclose(staged.data, heatmap(0.75).data)
    assert [(params["name"], overwrite) for _, params, overwrite in fake.calls] == [
        (f"{FOLDER}/lake_dam_probability", True),
        (f"{FOLDER}/ozarks_dam_probability", True),
    ]
    loaded = EarthEngineIngestionDataset(report_path=str(report)).load()
    assert [entry["operation"] for entry in loaded["ingestions"]] == ["TASKID0", "TASKID1"]


def test_a_refused_ingestion_names_the_asset_and_the_report_keeps_the_others(tmp_path, monkeypatch):
    FakeIngestion(refuse="ozarks_dam_probability").install(monkeypatch)
    report = tmp_path / "report.json"
    with pytest.raises(DatasetError, match="ozarks_dam_probability.*upload.overwrite"):
        EarthEngineIngestionDataset(report_path=str(report)).save(plan(tmp_path))
    assert [e["scene"] for e in json.loads(report.read_text())["ingestions"]] == ["lake"]


def test_missing_settings_say_what_to_set(tmp_path):
    source = base_settings(ImageSourceSettings, "image_source")
    heatmaps = {"lake": lambda: heatmap(0.5)}
    with pytest.raises(ValueError, match="upload.asset_folder"):
        plan_heatmap_ingestion(heatmaps, METADATA, source, base_settings(UploadSettings, "upload"))
    unstaged = base_settings(UploadSettings, "upload", asset_folder=FOLDER)
    with pytest.raises(ValueError, match="upload.staging_url"):
        plan_heatmap_ingestion(heatmaps, METADATA, source, unstaged)
    with pytest.raises(ValueError, match="segment"):
        plan_heatmap_ingestion({}, METADATA, source, unstaged)
    with pytest.raises(ValueError, match="asset_folder"):
        base_settings(UploadSettings, "upload", asset_folder="users/me/dams")
