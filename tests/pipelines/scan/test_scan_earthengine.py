"""The scan node on Earth Engine (offline, a fake batch service that writes the planet's pixels):
the same heatmaps and detections as scanning the planet directly, on a real Dask cluster."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio

from dam_detection.detection.settings import DetectionSettings
from dam_detection.image_sources.base import make_image_source
from dam_detection.image_sources.settings import ImageSourceSettings
from dam_detection.model_metadata import model_metadata
from dam_detection.pipelines.gee_export.nodes import composite_window
from dam_detection.pipelines.gee_export.settings import CompositeWindowSettings
from dam_detection.pipelines.scan.nodes import plan_scan_tiles, scan_tiles_on_dask
from dam_detection.pipelines.scan.region import build_scan_region
from dam_detection.pipelines.scan.settings import RegionSettings, ScanSettings
from dam_detection.pipelines.scan.store import TileStore
from dam_detection.pipelines.train.models import receptive_field

# Earth Engine offline, without the Earth Engine tests' socket ban (Dask talks over localhost).
from tests.image_sources.earthengine.conftest import (  # noqa: F401
    FakeTaskApi,
    _ee_session,
    ee_offline,
)
from tests.image_sources.earthengine.test_ee_scan_tiles import planet_export
from tests.pipelines.scan.helpers import BANDS, STATS, tiny_fcn
from tests.settings import base_settings

pytestmark = pytest.mark.usefixtures("ee_offline")

BBOX = [-110.33, 37.40, -110.30, 37.402]  # two tiles of 300 px


COMPOSITE = base_settings(CompositeWindowSettings, "gee_export.composite")


def scan(source: ImageSourceSettings, store: TileStore, model) -> dict:
    params = base_settings(
        ScanSettings, "scan", env="test", threshold=0.5, matching={"confirm_threshold": None},
        region={"name": "t", "bbox": BBOX, "file": None},
        tiles={"size_px": 300, "overlap_px": 8, "epsg": None},
    )  # fmt: skip
    tiles = plan_scan_tiles(build_scan_region(RegionSettings(name="t", bbox=BBOX, file=None)),
                            params)  # fmt: skip
    metadata = model_metadata("fcn", BANDS, 16, receptive_field(model), None)
    inventory = gpd.GeoDataFrame({"point_id": []}, geometry=[], crs=4326)
    return scan_tiles_on_dask(
        tiles, store, model, metadata, {"bands": STATS}, inventory, {}, source, 1,
        COMPOSITE, base_settings(DetectionSettings, "detection"), params,
    )  # fmt: skip


def test_a_scan_on_earth_engine_gives_what_the_same_pixels_give_on_the_planet(
    tmp_path: Path, monkeypatch
):
    bucket = tmp_path / "bucket"
    bucket.mkdir()
    model = tiny_fcn()
    planet = ImageSourceSettings.model_validate(
        {"kind": "simulated",
         "simulated": base_settings(ImageSourceSettings, "image_source").simulated.model_dump()
         | {"seed": 5, "tile_px": 256, "tile_cache": None}}
    )  # fmt: skip
    rendered = make_image_source(planet, 1)
    earthengine = base_settings(
        ImageSourceSettings, "image_source", env="earthengine",
        earthengine={"bucket": "dams", "read_url": bucket.as_uri(),
                     "manifest_dir": str(tmp_path / "manifest"), "tasks": {"poll_interval_s": 0}},
    )  # fmt: skip
    api = FakeTaskApi(
        planet_export(bucket, planet=rendered, composite=composite_window(COMPOSITE))
    ).install(monkeypatch)
    on_ee = scan(earthengine, TileStore(tmp_path / "ee"), model)
    on_planet = scan(planet, TileStore(tmp_path / "planet"), model)
    assert len(api.starts) == on_ee["tiles_scanned"] == on_planet["tiles_scanned"] == 2
    for summary in on_ee["per_tile"]:
        tile = summary["tile_id"]
        with (
            rasterio.open(tmp_path / "ee" / "heatmaps" / f"{tile}.tif") as a,
            rasterio.open(tmp_path / "planet" / "heatmaps" / f"{tile}.tif") as b,
        ):
            np.testing.assert_array_equal(a.read(), b.read())
        detections = [json.loads((tmp_path / side / "detections" / f"{tile}.json").read_text())
                      for side in ("ee", "planet")]  # fmt: skip
        assert detections[0] == detections[1]
    assert sum(s["detections"] for s in on_ee["per_tile"]) > 0  # the comparison has content
    # A re-run on Earth Engine finds every tile finished: no export, no worker.
    again = FakeTaskApi(
        planet_export(bucket, planet=rendered, composite=composite_window(COMPOSITE))
    ).install(monkeypatch)
    rerun = scan(earthengine, TileStore(tmp_path / "ee"), model)
    assert rerun["tiles_skipped"] == 2 and again.starts == []
