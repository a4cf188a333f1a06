"""Nodes of the ``segment`` pipeline that make the detections: predict and stitch heatmaps,
slide the baseline classifier, find peaks, and hand heatmaps and detections to the catalog
(evaluation, figures and the summary are in :mod:`.report_nodes`).

Scenes arrive as lazy :class:`~dam_detection.datasets.image_export.ImageExport` objects whose
patches stream from their files; everything written goes through the catalog.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

import geopandas as gpd
import numpy as np
import pyproj
import shapely

from dam_detection.datasets.geotiff import GeoRaster
from dam_detection.datasets.scene_predictions import ScenePrediction
from dam_detection.detection.settings import DetectionSettings
from dam_detection.detection.threshold import validation_threshold
from dam_detection.detection.views import averaged_over_views
from dam_detection.model_metadata import check_bands, check_overlap
from dam_detection.pipelines.segment.blocks import (
    computed_area_ratio,
    halo_for,
    predict_scene_blocked,
)
from dam_detection.pipelines.segment.detect import detect_peaks
from dam_detection.pipelines.segment.predict import ScoreMap, keras_predictor, predict_scene
from dam_detection.pipelines.segment.settings import SegmentSettings
from dam_detection.pipelines.segment.sliding import slide_classifier

logger = logging.getLogger(__name__)


def predict_heatmaps(
    scenes: Mapping[str, Any],
    fcn_model: Any,
    fcn_metadata: Mapping[str, Any],
    band_stats: Mapping[str, Any],
    params: SegmentSettings,
    detection: DetectionSettings,
) -> dict[str, ScoreMap]:
    """Run the FCN over every scene, patch batch by patch batch, and stitch the heatmaps.

    Args:
        scenes: Scene name to lazy image export (``scenes`` dataset).
        fcn_model: The fully convolutional Keras model.
        fcn_metadata: Its metadata (bands by name and order, receptive field), checked first.
        band_stats: ``stats.json`` content.
        params: ``params:segment``.
        detection: ``params:detection`` (the views each batch is averaged over).

    Returns:
        Scene name to its float16 heatmap with an RGB preview.
    """
    names = check_bands(fcn_metadata, params.bands or [], "segment.bands")
    for name, scene in sorted(scenes.items()):
        check_overlap(fcn_metadata, scene.kernel_size, name)
    # Imported here: Keras loads TensorFlow, which the run's log hook imports quietly first.
    from dam_detection.pipelines.segment.inference import fold_batch_norm

    maps = {}
    # Normalisation folded into the convolutions: the same function, a pass less per layer.
    predictor = averaged_over_views(keras_predictor(fold_batch_norm(fcn_model)), detection.views)
    for name, scene in sorted(scenes.items()):
        batches = scene.iter_patches(bands=names, batch_size=params.batch_size)
        if params.block_patches is None:
            stitch = partial(predict_scene, predictor, batches)
            ratio = computed_area_ratio(scene.mixer, scene.kernel_size[0] // 2, 1, 1)
        else:
            halo = halo_for(int(fcn_metadata["receptive_field_px"]))
            stitch = partial(
                predict_scene_blocked, predictor, batches,
                halo=halo, block_patches=params.block_patches,
                blocks_per_batch=params.blocks_per_batch,
            )  # fmt: skip
            ratio = computed_area_ratio(scene.mixer, halo, *(2 * (params.block_patches,)))
        maps[name] = stitch(
            scene.mixer,
            scene.kernel_size,
            band_stats["bands"],
            names,
            scene=name,
            preview_max_px=params.preview_max_px,
        )
        logger.info(
            "segment: %s %dx%d px in %.1f s (%.2f Mpx/s, %.2fx the area computed)",
            name, scene.mixer.width_px, scene.mixer.height_px, maps[name].seconds,
            maps[name].probability.size / 1e6 / max(maps[name].seconds, 1e-9), ratio,
        )  # fmt: skip
    return maps


def slide_baseline(
    scenes: Mapping[str, Any],
    classifier_model: Any,
    classifier_metadata: Mapping[str, Any],
    band_stats: Mapping[str, Any],
    params: SegmentSettings,
) -> dict[str, ScoreMap]:
    """Slide the patch classifier over every scene at ``baseline.stride_px`` (the baseline).

    Returns:
        Scene name to a coarse score grid; empty when ``baseline.stride_px`` is null.
    """
    settings = params.baseline
    if settings.stride_px is None:
        return {}
    names = check_bands(classifier_metadata, params.bands or [], "segment.bands")
    crop = int(classifier_model.input_shape[1])
    maps = {}
    for name, scene in sorted(scenes.items()):
        maps[name] = slide_classifier(
            keras_predictor(classifier_model),
            scene.iter_patches(bands=names, batch_size=params.batch_size),
            scene.mixer,
            scene.kernel_size,
            band_stats["bands"],
            names,
            crop_size=crop,
            stride=settings.stride_px,
            batch_size=settings.batch_size,
            scene=name,
        )
        logger.info("segment baseline: %s in %.1f s", name, maps[name].seconds)
    return maps


#: No-data value of the heatmap GeoTIFFs: outside [0, 1], so no probability is mistaken for it.
HEATMAP_NODATA = -1.0


def heatmap_rasters(score_maps: Mapping[str, ScoreMap]) -> dict[str, Callable[[], GeoRaster]]:
    """Georeferenced heatmaps for the GeoTIFF partitions (built one at a time on save).

    Pixels whose input was no data (NaN or infinite bands) hold :data:`HEATMAP_NODATA`, which
    the file declares as its no-data value.
    """

    def raster(score_map: ScoreMap) -> GeoRaster:
        data = score_map.probability
        if score_map.no_data is not None:
            data = np.where(score_map.no_data, HEATMAP_NODATA, data).astype(data.dtype)
        return GeoRaster(
            data, score_map.mixer.crs, score_map.cell_affine(),
            band_names=("dam_probability",), nodata=HEATMAP_NODATA,
        )  # fmt: skip

    return {name: partial(raster, m) for name, m in score_maps.items()}


def prediction_exports(
    score_maps: Mapping[str, ScoreMap], params: SegmentSettings
) -> dict[str, ScenePrediction]:
    """Heatmaps as Earth Engine upload payloads: one band per scene, the export's mixer."""
    band = params.prediction_band
    return {name: ScenePrediction(m.mixer, {band: m.probability}) for name, m in score_maps.items()}


def resolve_detection(
    params: SegmentSettings, detection: DetectionSettings, train_metrics: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Detection settings of the FCN and of the baseline classifier.

    ``detection.threshold: validation`` takes each model's threshold from what ``train``
    chose on the validation split (never on the scenes being evaluated): for the FCN the peak
    threshold of whole validation patches (``train_metrics["fcn"]["detection"]``), for the
    classifier its best-F1 threshold. A number is used for both as it is.

    Args:
        params: ``params:segment``.
        detection: ``params:detection`` (the peak spacing).
        train_metrics: ``train_metrics.json``.

    Returns:
        ``(fcn, baseline)``: each ``{"threshold", "min_distance_px", "smoothing_px", "source"}``.

    Raises:
        KeyError: If ``validation`` is asked for and ``train_metrics`` lacks the threshold.
        ValueError: If train chose the FCN's threshold with another ``smoothing_px``.
    """
    distance = float(detection.min_distance_px)
    # The FCN's heatmap is smoothed as train smoothed it when choosing its threshold; the
    # sliding classifier's grid is not (its threshold is the best F1 of single scores).
    fcn_peaks = {"min_distance_px": distance, "smoothing_px": float(detection.smoothing_px)}
    grid_peaks = {"min_distance_px": distance, "smoothing_px": 0.0}
    threshold = params.detection.threshold
    if threshold != "validation":
        fixed = {"threshold": float(threshold), "source": "parameters"}
        return {**fixed, **fcn_peaks}, {**fixed, **grid_peaks}
    setting = "segment.detection.threshold"
    fcn = validation_threshold(train_metrics, detection, setting)
    try:
        classifier = float(train_metrics["classifier"]["threshold"])
    except KeyError as exc:
        raise KeyError(
            f"{setting} is 'validation' but train_metrics has no {exc}: re-run the train "
            "pipeline or set a number"
        ) from exc
    return (
        {"threshold": fcn, **fcn_peaks, "source": "validation"},
        {"threshold": classifier, **grid_peaks, "source": "validation"},
    )


def detect_candidates(
    score_maps: Mapping[str, ScoreMap], settings: Mapping[str, Any], params: SegmentSettings
) -> dict[str, gpd.GeoDataFrame]:
    """Every peak down to ``evaluation.score_floor``, ``min_distance_px`` apart, as EPSG:4326
    points with scores: the candidates the precision-recall curve runs over, and from which
    :func:`detect_dams` keeps the detections (so each heatmap is searched once).
    """
    floor, distance = float(params.evaluation.score_floor), float(settings["min_distance_px"])
    if floor > float(settings["threshold"]):
        raise ValueError(
            f"segment.evaluation.score_floor {floor} is above the detection threshold "
            f"{settings['threshold']}: lower it, or no detection could be found"
        )
    smoothing = float(settings["smoothing_px"])
    return {name: detect_peaks(m, floor, distance, smoothing) for name, m in score_maps.items()}


def detect_dams(
    candidates: Mapping[str, gpd.GeoDataFrame], settings: Mapping[str, Any]
) -> dict[str, gpd.GeoDataFrame]:
    """The candidates at or above the detection ``threshold`` (``settings`` from
    :func:`resolve_detection`).

    The same peaks a search at the threshold would find: a peak is only ever suppressed by a
    higher one, and a flat top is one value, so cutting the floor's peaks at the threshold keeps
    exactly the threshold's.
    """
    threshold = float(settings["threshold"])
    return {
        name: table[table["score"] >= threshold].reset_index(drop=True)
        for name, table in candidates.items()
    }


def detections_geojson(
    detections: Mapping[str, gpd.GeoDataFrame], fcn_metadata: Mapping[str, Any]
) -> dict[str, dict[str, Any]]:
    """Detections as GeoJSON FeatureCollections (one ``<scene>.geojson`` each).

    Each detection carries a stable ``detection_id`` (``<scene>:<rank>``, highest score first)
    and the ``model`` fingerprint of the FCN that found it (its metadata's ``weights_sha256``),
    so a detection reviewed later can be traced to the model and run that made it.
    """
    model = str(fcn_metadata.get("weights_sha256", "unknown"))[:16]
    collections = {}
    for name, table in detections.items():
        ids = [f"{name}:{rank:04d}" for rank in range(len(table))]
        tagged = table.assign(detection_id=ids, model=model, score=table["score"].round(4))
        collections[name] = tagged[["detection_id", *table.columns, "model"]].to_geo_dict(
            drop_id=True
        )
    return collections


def scene_footprint(scene: Any) -> shapely.Polygon:
    """The scene's unbuffered mosaic outline in EPSG:4326 (edges densified)."""
    mixer = scene.mixer
    steps = np.linspace(0, 1, 17)
    cols = np.concatenate([steps, np.ones(17), steps[::-1], np.zeros(17)]) * mixer.width_px
    rows = np.concatenate([np.zeros(17), steps, np.ones(17), steps[::-1]]) * mixer.height_px
    x, y = mixer.pixel_to_crs(cols, rows)
    transformer = pyproj.Transformer.from_crs(mixer.crs, "EPSG:4326", always_xy=True)
    return shapely.Polygon(np.column_stack(transformer.transform(x, y)))


def known_dams(
    scenes: Mapping[str, Any], points: gpd.GeoDataFrame, params: SegmentSettings
) -> dict[str, gpd.GeoDataFrame]:
    """The dams each scene is judged against.

    Simulated scenes carry their truth (dam wall centres); for real scenes the dams of the points
    table (``label == 1``) inside the scene's footprint stand in.

    Returns:
        Scene name to points in EPSG:4326 with ``dam_id`` and ``source`` (``truth`` or
        ``points``).
    """
    kinds = list(params.evaluation.truth_kinds)
    dams = points[points["label"] == 1].to_crs("EPSG:4326")
    out = {}
    for name, scene in sorted(scenes.items()):
        truth = scene.truth()
        if truth is not None:
            walls = truth[truth["kind"].isin(kinds)].to_crs("EPSG:4326")
            walls = walls.assign(geometry=walls.geometry.representative_point())
            table = walls[["dam_id", "geometry"]].assign(source="truth")
        else:
            inside = dams[dams.within(scene_footprint(scene))]
            table = gpd.GeoDataFrame(
                {"dam_id": inside["point_id"].to_numpy(), "source": "points"},
                geometry=inside.geometry.to_numpy(), crs="EPSG:4326",
            )  # fmt: skip
        out[name] = gpd.GeoDataFrame(table.reset_index(drop=True), crs="EPSG:4326")
    return out
