"""Output formats: GeoTIFF georeferencing, Earth Engine prediction records, GeoJSON detections."""

from __future__ import annotations

import ctypes
import glob
import json
import os

import geopandas as gpd
import numpy as np
import pytest

from dam_detection.datasets.geotiff import GeoRaster, GeoTIFFDataset, read_geotiff
from dam_detection.datasets.scene_predictions import ScenePrediction, ScenePredictionsDataset
from dam_detection.mixer import Mixer
from dam_detection.pipelines.segment.nodes import heatmap_rasters
from dam_detection.pipelines.segment.predict import ScoreMap
from tests.pipelines.segment.scenes import MIXER


def _gdal():
    """GDAL's C library as bundled in pyogrio's wheel (it includes the GTiff raster driver)."""
    import pyogrio

    libs = glob.glob(
        os.path.join(os.path.dirname(pyogrio.__file__), "..", "pyogrio.libs", "libgdal*")
    )
    if not libs:
        pytest.skip("no GDAL library bundled with pyogrio")
    gdal = ctypes.CDLL(libs[0])
    gdal.GDALAllRegister()
    gdal.GDALOpen.restype = ctypes.c_void_p
    gdal.GDALOpen.argtypes = [ctypes.c_char_p, ctypes.c_int]
    gdal.GDALGetGeoTransform.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_double)]
    gdal.GDALGetProjectionRef.restype = ctypes.c_char_p
    gdal.GDALGetProjectionRef.argtypes = [ctypes.c_void_p]
    for name in ("GDALGetRasterXSize", "GDALGetRasterYSize"):
        getattr(gdal, name).argtypes = [ctypes.c_void_p]
    gdal.GDALClose.argtypes = [ctypes.c_void_p]
    return gdal


def gdal_georeferencing(path: str) -> tuple[tuple[float, ...], str, tuple[int, int]]:
    gdal = _gdal()
    handle = gdal.GDALOpen(str(path).encode(), 0)
    assert handle, f"GDAL cannot open {path}"
    transform = (ctypes.c_double * 6)()
    assert gdal.GDALGetGeoTransform(handle, transform) == 0
    wkt = gdal.GDALGetProjectionRef(handle).decode()
    size = (gdal.GDALGetRasterXSize(handle), gdal.GDALGetRasterYSize(handle))
    gdal.GDALClose(handle)
    return tuple(transform), wkt, size


@pytest.mark.parametrize(
    ("crs", "affine"),
    [
        ("EPSG:32614", (10.0, 0.0, 500000.0, 0.0, -10.0, 4480000.0)),
        ("EPSG:4326", (0.0001, 0.0, -99.5, 0.0, -0.0001, 40.5)),
        ("EPSG:32614", (10.0, 0.5, 500000.0, 0.25, -10.0, 4480000.0)),  # sheared
    ],
)
def test_geotiff_round_trips_the_mixer_georeferencing(tmp_path, crs, affine):
    data = np.linspace(0, 1, 48 * 40, dtype=np.float16).reshape(48, 40)
    path = tmp_path / "heat.tif"
    dataset = GeoTIFFDataset(filepath=str(path))
    dataset.save(GeoRaster(data, crs, affine, band_names=("dam_probability",)))

    back = dataset.load()
    assert dataset.exists() and not list(tmp_path.glob(".*tmp"))
    np.testing.assert_array_equal(back.data, data)
    assert back.crs == crs and back.band_names == ("dam_probability",)
    np.testing.assert_allclose(back.affine, affine)
    # GDAL (what QGIS uses) places it at the same spot: GeoTransform = the mixer's affine.
    transform, wkt, size = gdal_georeferencing(str(path))
    x_scale, x_shear, x_0, y_shear, y_scale, y_0 = affine
    np.testing.assert_allclose(transform, (x_0, x_scale, x_shear, y_0, y_shear, y_scale))
    assert size == (40, 48)
    assert f'"EPSG","{crs.split(":")[1]}"' in wkt


def test_heatmap_raster_of_a_coarse_grid_is_centred_on_its_pixels():
    probability = np.zeros((4, 4), np.float16)
    grid = ScoreMap("s", MIXER, probability, stride=8, offset=4)
    raster = heatmap_rasters({"s": grid})["s"]()
    # Cell (0, 0) scores mosaic pixel (4, 4); its 8-pixel cell spans pixels 0.5 .. 8.5.
    assert raster.affine == (80.0, 0.0, 500005.0, 0.0, -80.0, 4479995.0)


def test_prediction_records_parse_with_tensorflow_in_export_order(tmp_path):
    import tensorflow as tf

    mixer = Mixer("EPSG:32614", MIXER.affine, 5, 3, 3, 6)  # 2 rows of 3 patches, 15 x 6 px
    probability = np.arange(mixer.height_px * mixer.width_px, dtype=np.float32).reshape(6, 15)
    dataset = ScenePredictionsDataset(path=str(tmp_path / "predictions"), max_file_size_bytes=260)
    dataset.save({"s": ScenePrediction(mixer, {"dam_probability": probability.astype(np.float16)})})

    folder = tmp_path / "predictions" / "s"
    files = sorted(folder.glob("predictions-*.TFRecord"))
    assert len(files) == 3  # 2 records (60 float bytes + overhead) per file
    assert json.loads((folder / "predictions-mixer.json").read_text()) == mixer.to_json()
    spec = {"dam_probability": tf.io.FixedLenFeature([3, 5], tf.float32)}
    patches = [
        tf.io.parse_single_example(record, spec)["dam_probability"].numpy()
        for record in tf.data.TFRecordDataset([str(f) for f in files])
    ]
    assert len(patches) == 6
    for index, patch in enumerate(patches):
        row, col = mixer.patch_origin(index)
        np.testing.assert_array_equal(patch, probability[row : row + 3, col : col + 5])
    stitched = dataset.load()["s"]()
    np.testing.assert_array_equal(stitched.bands["dam_probability"], probability)


def test_read_geotiff_rejects_a_plain_tiff(tmp_path):
    import tifffile
    from kedro.io import DatasetError

    tifffile.imwrite(tmp_path / "plain.tif", np.zeros((4, 4), np.uint8))
    with pytest.raises(DatasetError, match="not a GeoTIFF"):
        read_geotiff(tmp_path / "plain.tif")


def test_overlays_have_coordinates_and_a_scale_bar():
    from dam_detection.pipelines.segment.plots import overlay_figure
    from tests.pipelines.segment.scenes import MIXER

    probability = np.zeros((MIXER.height_px, MIXER.width_px), np.float16)
    score_map = ScoreMap("lake", MIXER, probability, preview_step=2)
    empty = gpd.GeoDataFrame({"row": [], "col": []}, geometry=[], crs=4326)
    figure = overlay_figure(score_map, empty, None)
    axes = figure.axes[0]
    longitudes = [label.get_text() for label in axes.get_xticklabels()]
    assert len(longitudes) == 5 and all(text.endswith("°") for text in longitudes)
    assert axes.get_xlabel() == "longitude" and axes.get_ylabel() == "latitude"
    assert any(text.get_text().endswith((" m", " km")) for text in axes.texts)  # the scale bar


def test_heatmaps_are_cloud_optimized_geotiffs_with_nodata_and_overviews(tmp_path):
    import rasterio

    rng = np.random.default_rng(3)
    data = rng.random((1024, 768)).astype(np.float16)
    data[:10, :10] = -1.0  # no data
    affine = (10.0, 0.0, 500000.0, 0.0, -10.0, 4100000.0)
    raster = GeoRaster(data, "EPSG:32615", affine, band_names=("dam_probability",), nodata=-1.0)
    path = tmp_path / "scene.tif"
    GeoTIFFDataset(filepath=str(path), save_args={"layout": "cog"}).save(raster)
    with rasterio.open(path) as cog:
        assert cog.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        assert cog.overviews(1) == [2, 4]  # down to one 256-pixel tile
        assert cog.block_shapes[0] == (256, 256) and cog.nodata == -1.0
        assert cog.descriptions == ("dam_probability",)
        assert cog.crs.to_epsg() == 32615 and tuple(cog.transform)[:6] == affine
    back = GeoTIFFDataset(filepath=str(path)).load()
    np.testing.assert_array_equal(back.data, data.astype(np.float32))
    assert back.nodata == -1.0 and back.band_names == ("dam_probability",)
    assert back.affine == affine and back.crs == "EPSG:32615"
