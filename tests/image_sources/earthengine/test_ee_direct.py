"""The direct path (``transport: compute_pixels``): request bodies asserted, answers written in
the export formats."""

from __future__ import annotations

import threading
import time

import ee
import geopandas as gpd
import numpy as np
import pytest
from shapely.geometry import Point

from dam_detection.image_sources.base import PatchRequest, SceneRequest
from dam_detection.image_sources.earthengine import EarthEngineSource
from dam_detection.image_sources.earthengine.scenes import METRES_PER_DEGREE
from dam_detection.mixer import Mixer
from dam_detection.tfrecord_codec import decode_example
from tests.image_sources.earthengine.conftest import PROJECT
from tests.image_sources.earthengine.ee_graph import constant, invocations
from tests.settings import composite_window, earthengine_settings

pytestmark = pytest.mark.usefixtures("ee_offline")
RADIUS = 2
PIXEL = 10 / METRES_PER_DEGREE


class FakeComputePixels:
    """``ee.data.computePixels``: records each request, answers a structured array whose
    values encode the request's pixel grid, refuses the first calls with HTTP 429."""

    def __init__(self, refusals: int = 0, masked_centre_band: str | None = None) -> None:
        self.requests: list[dict] = []
        self.refusals = refusals
        self.masked_centre_band = masked_centre_band
        self.in_flight = 0
        self.most_in_flight = 0
        self._lock = threading.Lock()

    def __call__(self, params: dict) -> np.ndarray:
        with self._lock:
            self.requests.append(params)
            if self.refusals:
                self.refusals -= 1
                raise ee.EEException("Too Many Requests: HTTP 429, quota exceeded")
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        time.sleep(0.01)  # long enough for requests to overlap
        with self._lock:
            self.in_flight -= 1
        grid = params["grid"]
        width, height = grid["dimensions"]["width"], grid["dimensions"]["height"]
        names = [b for b in ("B2", "NDWI", "B2_mask", "NDWI_mask")]
        pixels = np.zeros((height, width), dtype=[(name, "<f4") for name in names])
        origin = grid["affineTransform"]["translateX"]
        pixels["B2"] = np.arange(width * height).reshape(height, width) + origin
        pixels["NDWI"] = -1.0
        pixels["B2_mask"] = pixels["NDWI_mask"] = 1
        if self.masked_centre_band:
            pixels[f"{self.masked_centre_band}_mask"][height // 2, width // 2] = 0
        return pixels


def direct_source(**tasks) -> EarthEngineSource:
    settings = earthengine_settings(
        transport="compute_pixels",
        compute_pixels={"max_concurrent_requests": 3},
        tasks={"backoff_initial_s": 0, **tasks},
    )
    return EarthEngineSource(settings, project=PROJECT)  # no bucket: none is needed


@pytest.fixture
def points() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"point_index": list(range(8)), "label": [1, 0] * 4},
        geometry=[Point(-111.1 + 0.01 * i, 33.67) for i in range(8)],
        crs="EPSG:4326",
    )


def test_patches_are_requested_on_the_sampling_grid_and_written_as_table_records(
    points, monkeypatch
):
    fake = FakeComputePixels(refusals=2)
    monkeypatch.setattr(ee.data, "computePixels", fake)
    request = PatchRequest(
        composite=composite_window(), bands=("B2", "NDWI"), radius=RADIUS, points_per_file=5
    )
    files = direct_source().patch_files(points, request)
    assert list(files) == ["patches-00000", "patches-00001"]
    records = [decode_example(r) for name in files for r in files[name]()]
    # Two refusals (HTTP 429) were retried: every point came back, in order, once.
    assert [r["point_index"][0] for r in records] == list(range(8))
    assert len(fake.requests) == 8 + 2
    assert 1 < fake.most_in_flight <= 3  # in parallel, never past max_concurrent_requests
    body = fake.requests[-1]
    assert body["fileFormat"] == "NUMPY_NDARRAY"
    grid = body["grid"]
    assert grid["crsCode"] == "EPSG:4326" and grid["dimensions"] == {"width": 5, "height": 5}
    transform = grid["affineTransform"]
    assert (
        transform["scaleX"] == pytest.approx(PIXEL) and transform["scaleY"] == -transform["scaleX"]
    )
    # The centre pixel is the lattice pixel holding the point, as reduceRegion samples it.
    lon = points.geometry.iloc[7].x
    centre_left = transform["translateX"] + RADIUS * PIXEL
    assert centre_left <= lon < centre_left + PIXEL
    # The same image as a batch export: filterBounds on the chunk, mask bands beside values.
    expression = body["expression"]
    assert invocations(expression, "Image.unmask") and invocations(expression, "Image.mask")
    assert invocations(expression, "Filter.intersects")
    renamed = [constant(a["names"]) for a in invocations(expression, "Image.rename")]
    assert ["B2_mask", "NDWI_mask"] in renamed
    record = records[0]
    assert record["B2"].shape == (25,) and record["label"][0] == 1.0


def test_a_band_with_a_masked_centre_is_left_out_as_an_export_leaves_it(points, monkeypatch):
    monkeypatch.setattr(ee.data, "computePixels", FakeComputePixels(masked_centre_band="NDWI"))
    request = PatchRequest(
        composite=composite_window(), bands=("B2", "NDWI"), radius=RADIUS, points_per_file=8
    )
    (chunk,) = direct_source().patch_files(points.iloc[:1], request).values()
    (record,) = [decode_example(r) for r in chunk()]
    assert "NDWI" not in record and record["B2"].shape == (25,)


def test_a_scene_is_fetched_tile_by_tile_with_its_buffer_and_the_planned_mixer(monkeypatch):
    fake = FakeComputePixels()
    monkeypatch.setattr(ee.data, "computePixels", fake)
    scene = SceneRequest(
        composite=composite_window(), name="lake", center_lon=-111.1, center_lat=33.65,
        width_px=64, height_px=32, bands=("B2",), patch_dimensions=(16, 16), kernel_size=(4, 4),
        file_prefix="scene", max_file_size_bytes=3 * 20 * 20 * 4 + 200,
    )  # fmt: skip
    export = direct_source().scene_export(scene)
    mixer = Mixer.from_json(export.mixer, "planned")
    assert (mixer.patches_per_row, mixer.total_patches) == (4, 8)
    # maxFileSize holds three buffered 20x20 tiles: 8 tiles make three files.
    assert list(export.files) == [f"scene-{i:05d}.tfrecord.gz" for i in range(3)]
    records = [decode_example(r) for name in export.files for r in export.files[name]()]
    assert len(records) == 8 and records[0]["B2"].shape == (20 * 20,)
    first, second = (request["grid"] for request in fake.requests[:2])
    assert first["dimensions"] == {"width": 20, "height": 20}
    x0 = mixer.affine[2]
    # Each tile starts half a kernel before its patch; the next one a patch width further.
    assert first["affineTransform"]["translateX"] == pytest.approx(x0 - 2 * PIXEL)
    assert second["affineTransform"]["translateX"] == pytest.approx(x0 + 14 * PIXEL)
