"""Every Earth Engine request the source builds, asserted on its serialized graph or task config."""

from __future__ import annotations

import dataclasses
import json
import logging

import ee
import geopandas as gpd
import numpy as np
import pytest
from shapely.geometry import Point, box

from dam_detection.image_sources.base import PatchRequest, SceneRequest, WaterEdgeSampling
from dam_detection.image_sources.earthengine import EarthEngineSource
from dam_detection.image_sources.earthengine.composite import band_stack
from dam_detection.image_sources.earthengine.negatives import random_samples
from dam_detection.image_sources.earthengine.scenes import scene_grid
from tests.image_sources.earthengine.ee_graph import constant, graph, invocations, point_features
from tests.settings import composite_window, earthengine_settings

WINDOW = composite_window()

pytestmark = pytest.mark.usefixtures("ee_offline")


@pytest.fixture
def points() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"point_index": [4, 0, 2], "label": [1, 0, 1], "kind": ["dam", "random", "dam"]},
        geometry=[Point(-111.1, 33.67), Point(-100.0, 40.0), Point(-90.5, 35.25)],
        crs="EPSG:4326",
    )


def composite(**overrides):
    return earthengine_settings(bucket="b", composite=overrides).composite


def test_composite_masks_clouds_with_cloud_score_plus_and_takes_the_median():
    window = composite_window(start_date="2024-05-01", end_date="2024-09-01", max_cloud_percent=15)
    image = band_stack(composite(), window, ["B2", "B3", "B4", "NDWI", "AVE"])
    loads = {constant(a["id"]) for a in invocations(image, "ImageCollection.load")}
    assert loads == {
        "COPERNICUS/S2_SR_HARMONIZED",
        "GOOGLE/CLOUD_SCORE_PLUS/V1/S2_HARMONIZED",
        "JAXA/ALOS/AW3D30/V4_1",
    }
    (cloud_filter,) = invocations(image, "Filter.lessThan")
    assert constant(cloud_filter["leftField"]) == "CLOUDY_PIXEL_PERCENTAGE"
    assert constant(cloud_filter["rightValue"]) == 15
    (date_range,) = invocations(image, "DateRange")
    assert (constant(date_range["start"]), constant(date_range["end"])) == (
        "2024-05-01",
        "2024-09-01",
    )
    # Each image carries its own Cloud Score+ band (linked by system:index); pixels scoring at
    # least the threshold stay. No QA60 anywhere: it is empty after January 2022.
    (link,) = invocations(image, "Image.linkCollection")
    assert constant(link["linkedBands"]) == ["cs_cdf"]
    assert [constant(a["image2"]) for a in invocations(image, "Image.gte")] == [0.6]
    assert "QA60" not in graph(image) and "bitwiseAnd" not in graph(image)
    assert [constant(a["image2"]) for a in invocations(image, "Image.divide")] == [10000]
    assert len(invocations(image, "reduce.median")) == 1
    (ndwi,) = invocations(image, "Image.normalizedDifference")
    assert constant(ndwi["bandNames"]) == ["B3", "B8"]
    assert len(invocations(image, "ImageCollection.mosaic")) == 1
    renamed = [constant(a["names"]) for a in invocations(image, "Image.rename")]
    assert ["NDWI"] in renamed and ["AVE"] in renamed
    selected = [constant(a["bandSelectors"]) for a in invocations(image, "Image.select")]
    assert ["B2", "B3", "B4", "NDWI", "AVE"] in selected and ["DSM"] in selected


def test_qa60_masking_stays_an_option_for_early_dates():
    image = band_stack(composite(cloud_mask="qa60"), composite_window(), ["B2"])
    bits = sorted(constant(a["image2"]) for a in invocations(image, "Image.bitwiseAnd"))
    assert bits == [1 << 10, 1 << 11]
    assert ["QA60"] in [constant(a["bandSelectors"]) for a in invocations(image, "Image.select")]
    assert "CLOUD_SCORE_PLUS" not in graph(image) and not invocations(image, "Image.linkCollection")


def test_band_list_is_configurable_and_checked():
    image = band_stack(composite(), composite_window(), ["B8", "B4"])
    assert "normalizedDifference" not in graph(image) and "AW3D30" not in graph(image)
    with pytest.raises(ValueError, match="cannot export bands \\['slope'\\]"):
        band_stack(composite(), composite_window(), ["B2", "slope"])
    elevation = {"asset_id": "JAXA/ALOS/AW3D30_V1_1", "band": "AVE", "is_collection": False}
    single = band_stack(composite(elevation=elevation), composite_window(), ["AVE"])
    assert [constant(a["id"]) for a in invocations(single, "Image.load")] == [
        "JAXA/ALOS/AW3D30_V1_1"
    ]


def test_a_superseded_asset_is_named_with_its_replacement(caplog):
    elevation = {"asset_id": "JAXA/ALOS/AW3D30/V3_2", "band": "DSM", "is_collection": True}
    with caplog.at_level(logging.WARNING):
        EarthEngineSource(
            earthengine_settings(bucket="b", composite={"elevation": elevation}), project="p"
        )
    assert "JAXA/ALOS/AW3D30/V3_2" in caplog.text and "JAXA/ALOS/AW3D30/V4_1" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        EarthEngineSource(earthengine_settings(bucket="b"), project="p")  # the shipped assets
    assert "superseded" not in caplog.text


def test_patch_tasks_sample_each_point_with_reduce_region(points):
    source = EarthEngineSource(earthengine_settings(bucket="my-bucket", folder="runs/a"))
    request = PatchRequest(composite=WINDOW, radius=16, points_per_file=2, label_key="class")
    jobs = source.patch_jobs(points, request)
    assert [job.key for job in jobs] == ["patches-00000", "patches-00001"]
    config = dict(jobs[0].task.config)
    expression = config.pop("expression")
    assert config["fileExportOptions"] == {
        "fileFormat": "TF_RECORD_TABLE",
        "cloudStorageDestination": {"bucket": "my-bucket", "filenamePrefix": jobs[0].file_prefix},
    }
    assert jobs[0].file_prefix.startswith("runs/a/patches/patches-00000-")
    assert config["selectors"] == ["B2", "B3", "B4", "NDWI", "AVE", "class", "point_index"]
    (kernel,) = invocations(expression, "Kernel.rectangle")
    assert (constant(kernel["xRadius"]), constant(kernel["yRadius"])) == (16, 16)
    assert constant(kernel["units"]) == "pixels"
    assert len(invocations(expression, "Image.neighborhoodToArray")) == 1
    (reduce_region,) = invocations(expression, "Image.reduceRegion")
    assert constant(reduce_region["scale"]) == 10
    assert constant(reduce_region["tileScale"]) == 4
    # The grid is named, not inherited from the composite's default projection.
    assert reduce_region["crs"]["functionInvocationValue"]["functionName"] == "Projection"
    assert "EPSG:4326" in json.dumps(reduce_region["crs"])
    # Only images over this chunk's points enter its composite.
    (bounds,) = invocations(expression, "Filter.intersects")
    assert constant(bounds["leftField"]) == ".all"
    assert "Collection" in json.dumps(bounds["rightValue"])
    assert reduce_region["reducer"]["functionInvocationValue"]["functionName"] == "Reducer.first"
    # reduceRegion runs inside the function mapped over the point features (not sampleRegions).
    mapped = [
        a
        for a in invocations(expression, "Collection.map")
        if a["collection"]["functionInvocationValue"]["functionName"] == "Collection"
    ]
    assert len(mapped) == 1
    body = mapped[0]["baseAlgorithm"]["functionDefinitionValue"]["body"]
    assert "Image.reduceRegion" in json.dumps(
        ee.serializer.encode(expression, for_cloud_api=True)["values"][body]
    )
    assert "sampleRegions" not in graph(expression)
    # Chunk 0 holds the two lowest point indices, with float labels under the label key.
    features = point_features(expression)
    assert features == [{"class": 0.0, "point_index": 0}, {"class": 1.0, "point_index": 2}]


def test_drive_destination_and_wrong_settings(points, tmp_path):
    drive = earthengine_settings(destination="drive", drive_folder="dams", read_url=str(tmp_path))
    source = EarthEngineSource(drive, service_account=False)
    job = source.patch_jobs(points, PatchRequest(composite=WINDOW, points_per_file=5))[0]
    destination = job.task.config["fileExportOptions"]["driveDestination"]
    assert destination == {"folder": "dams", "filenamePrefix": job.file_prefix}
    with pytest.raises(ValueError, match="image_source.earthengine.bucket"):
        EarthEngineSource(earthengine_settings())
    with pytest.raises(ValueError, match="drive_folder and image_source.earthengine.read_url"):
        EarthEngineSource(earthengine_settings(destination="drive", drive_folder="dams"))


def test_scene_task_writes_gzip_tfrecord_patches_on_a_fixed_grid():
    scene = SceneRequest(
        composite=WINDOW,
        name="roosevelt",
        center_lon=-111.0,
        center_lat=33.6,
        width_px=600,
        height_px=300,
        bands=("B2", "NDWI"),
        patch_dimensions=(256, 128),
        kernel_size=(32, 32),
        file_prefix="scene",
        max_file_size_bytes=50_000_000,
        options={"dams": 3},  # the simulated planet's; Earth Engine ignores them
    )
    scene = dataclasses.replace(
        scene, composite=composite_window(start_date="2021-06-01", end_date="2021-07-01")
    )
    source = EarthEngineSource(earthengine_settings(bucket="my-bucket"))
    job, grid = source.scene_job(scene)
    config = dict(job.task.config)
    expression = config.pop("expression")
    options = config["fileExportOptions"]
    assert options["fileFormat"] == "TF_RECORD_IMAGE"
    assert options["cloudStorageDestination"]["filenamePrefix"].endswith("/scene")
    assert options["tfRecordOptions"] == {
        "tileDimensions": {"width": 256, "height": 128},
        "marginDimensions": {"width": 32, "height": 32},
        "compress": True,
        "maxSizeBytes": {"value": "50000000"},
    }
    (clip,) = invocations(expression, "Image.clipToBoundsAndScale")
    coordinates = clip["geometry"]["functionInvocationValue"]["arguments"]["coordinates"]
    assert constant(coordinates) == [0, 0, 512, 256]  # whole patches only: 2 x 2
    (date_range,) = invocations(expression, "DateRange")
    assert constant(date_range["start"]) == "2021-06-01"
    # filterBounds with the grid's footprint: only images over the scene are composited.
    (bounds,) = invocations(expression, "Filter.intersects")
    assert "GeometryConstructors.Rectangle" in json.dumps(bounds["rightValue"])
    assert grid.crs == "EPSG:4326" and (grid.patches_per_row, grid.total_patches) == (2, 4)
    assert grid.transform[0] == pytest.approx(8.983152841195215e-05, rel=1e-12)
    centre = (
        grid.transform[2] + 256 * grid.transform[0],
        grid.transform[5] + 128 * grid.transform[4],
    )
    np.testing.assert_allclose(centre, (-111.0, 33.6), atol=1e-12)
    mixer = source.scene_export(scene).mixer
    assert mixer["patchDimensions"] == [256, 128] and mixer["totalPatches"] == 4


def test_scene_grid_in_a_projected_crs_uses_metre_pixels():
    scene = SceneRequest(
        composite=WINDOW, name="s", center_lon=-111.0, center_lat=33.6, width_px=512, height_px=512
    )
    grid = scene_grid(scene, "EPSG:32612")
    assert grid.transform[0] == 10.0 and grid.transform[4] == -10.0
    assert grid.transform[2] % 10 == 0 and grid.total_patches == 4


def test_water_edges_sample_canny_edges_per_region(monkeypatch):
    regions = gpd.GeoDataFrame(
        {"name": ["az", "ut"], "factor": [0.1, np.nan]},
        geometry=[box(-112, 33, -111, 34), box(-111, 37, -110, 38)],
        crs="EPSG:4326",
    )
    sampling = WaterEdgeSampling(factor=0.05, seed=7, max_points_per_region=100)
    requests = []
    busy = [ee.EEException("<HttpError 503: Service Unavailable>")]  # once, then answered

    def compute_features(params):
        requests.append(params)
        if busy:
            raise busy.pop()
        if "pageToken" not in params:
            return {
                "features": [
                    {
                        "geometry": {"type": "Point", "coordinates": [-111.5, 33.5]},
                        "properties": {"region": "az"},
                    }
                ],
                "nextPageToken": "next",
            }
        return {
            "features": [
                {
                    "geometry": {"type": "Point", "coordinates": [-110.5, 37.5]},
                    "properties": {"region": "ut"},
                }
            ]
        }

    monkeypatch.setattr(ee.data, "computeFeatures", compute_features)
    source = EarthEngineSource(earthengine_settings(bucket="b", tasks={"backoff_initial_s": 0}))
    found = source.water_edge_points(regions, sampling)
    assert list(found["region"]) == ["az", "ut"] and found.crs == "EPSG:4326"
    assert len(requests) == 3  # the refused first page was asked again
    assert [p.coords[0] for p in found.geometry] == [(-111.5, 33.5), (-110.5, 37.5)]
    expression = requests[0]["expression"]
    assert requests[2]["pageToken"] == "next"
    assert [constant(a["id"]) for a in invocations(expression, "Image.load")] == [
        "JRC/GSW1_4/GlobalSurfaceWater"
    ]
    (canny,) = invocations(expression, "CannyEdgeDetector")
    assert (constant(canny["threshold"]), constant(canny["sigma"])) == (60.0, 1.0)
    assert [constant(a["image2"]) for a in invocations(expression, "Image.lt")] == [220.0]
    samples = invocations(expression, "Image.sample")
    assert [constant(a["scale"]) for a in samples] == [100.0, 100.0]
    assert [constant(a["factor"]) for a in samples] == [0.1, 0.05]
    assert [constant(a["seed"]) for a in samples] == [7, 8]
    # The cap keeps a seeded random subset of each region, not its first tiles' points.
    columns = invocations(expression, "Collection.randomColumn")
    assert [(constant(a["columnName"]), constant(a["seed"])) for a in columns] == [
        ("random", 7),
        ("random", 8),
    ]
    limits = invocations(expression, "Collection.limit")  # sort is a limit with only a key
    assert [constant(a["key"]) for a in limits if "key" in a] == ["random", "random"]
    capped = [a for a in limits if "limit" in a]
    assert [constant(a["limit"]) for a in capped] == [100, 100]
    assert all("Collection.randomColumn" in json.dumps(a["collection"]) for a in capped)


def test_random_points_use_random_points_per_region():
    regions = gpd.GeoDataFrame({"name": ["a"]}, geometry=[box(0, 0, 1, 1)], crs="EPSG:4326")
    (call,) = invocations(random_samples(regions, 50, seed=3), "FeatureCollection.randomPoints")
    assert (constant(call["points"]), constant(call["seed"])) == (50, 3)
