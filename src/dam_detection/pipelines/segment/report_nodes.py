"""Nodes of the ``segment`` pipeline that judge and show the detections: evaluation against known
dams, overlays, close-ups, the precision-recall plot and the run summary.

Scenes arrive as lazy :class:`~dam_detection.datasets.image_export.ImageExport` objects whose
patches stream from their files; everything written goes through the catalog.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from contextlib import closing
from functools import partial
from typing import Any

import geopandas as gpd
import numpy as np
from matplotlib.figure import Figure

from dam_detection.bands import RGB_BANDS
from dam_detection.detection.matching import combine_counts
from dam_detection.detection.settings import DetectionSettings
from dam_detection.model_metadata import check_bands
from dam_detection.pipelines.segment.close_up_figure import close_ups_figure
from dam_detection.pipelines.segment.close_ups import (
    cut_chips,
    cut_heat,
    pixel_size_m,
    select_close_ups,
)
from dam_detection.pipelines.segment.detect import pixels_to_lonlat
from dam_detection.pipelines.segment.evaluate import at, evaluate_scene
from dam_detection.pipelines.segment.plots import (
    overlay_figure,
    precision_recall_figure,
    to_pixels,
)
from dam_detection.pipelines.segment.predict import ScoreMap
from dam_detection.pipelines.segment.settings import SegmentSettings

logger = logging.getLogger(__name__)

#: Most score thresholds a precision-recall curve is evaluated at (each is a full matching).
MAX_CURVE_POINTS = 200


def overlay_figures(
    score_maps: Mapping[str, ScoreMap],
    detections: Mapping[str, gpd.GeoDataFrame],
    truth: Mapping[str, gpd.GeoDataFrame],
) -> dict[str, Callable[[], Figure]]:
    """PNG overlays (RGB, heatmap, detections, known dams), drawn one at a time on save."""
    return {
        name: partial(overlay_figure, m, detections[name], truth.get(name))
        for name, m in score_maps.items()
    }


def close_up_figures(
    scenes: Mapping[str, Any],
    score_maps: Mapping[str, ScoreMap],
    detections: Mapping[str, gpd.GeoDataFrame],
    truth: Mapping[str, gpd.GeoDataFrame],
    fcn_detection: Mapping[str, Any],
    fcn_metadata: Mapping[str, Any],
    params: SegmentSettings,
    detection: DetectionSettings,
) -> dict[str, Callable[[], Figure]]:
    """Full-resolution close-ups of every known dam and FCN detection, one PNG per scene.

    Each figure is built on save (one in memory at a time): its chips are cut from a second pass
    over the scene's patches (RGB bands only; reading stops after the last patch a chip needs).
    A known dam matched by a detection within ``detection.tolerance_m`` shows once;
    at most ``close_ups.max_per_scene`` chips, known dams first, then false alarms by score
    (see :mod:`~dam_detection.pipelines.segment.close_ups`).

    Args:
        scenes: Scene name to lazy image export.
        score_maps: FCN heatmaps.
        detections: FCN detections (``row``, ``col``, ``score``).
        truth: Known dams per scene (EPSG:4326).
        fcn_detection: The FCN's detection settings (its ``threshold`` is contoured).
        fcn_metadata: The FCN's metadata (the bands the scenes were read with).
        params: ``params:segment``.
        detection: ``params:detection``.

    Returns:
        Scene name to a function drawing its figure.
    """
    size = params.close_ups.size_px
    cap = params.close_ups.max_per_scene
    names = check_bands(fcn_metadata, params.bands or [], "segment.bands")
    # True colour when the bands have it, else the first band in grey (as the preview does).
    display = list(RGB_BANDS) if set(RGB_BANDS) <= set(names) else names[:1]
    tolerance_m = float(detection.tolerance_m)
    threshold = float(fcn_detection["threshold"])

    def draw(name: str) -> Figure:
        scene, score_map, found = scenes[name], score_maps[name], detections[name]
        pixel_m = pixel_size_m(score_map.mixer)
        tolerance_px = tolerance_m / pixel_m
        known_rc = np.empty((0, 2))
        dams = truth.get(name)
        if dams is not None and len(dams):
            col, row = to_pixels(score_map, dams)
            known_rc = np.column_stack([row, col])
        found_rc = found[["row", "col"]].to_numpy(dtype=np.float64).reshape(-1, 2)
        scores = found["score"].to_numpy(dtype=np.float64)
        chosen, total = select_close_ups(
            known_rc, found_rc, scores, score_map.probability, tolerance_px,
            cap,
        )  # fmt: skip
        centres = np.array([(c.row, c.col) for c in chosen], dtype=np.float64).reshape(-1, 2)
        chips = np.zeros((0, size, size, len(display)), dtype=np.float32)
        if len(chosen):
            with closing(scene.iter_patches(bands=display)) as patches:
                chips = cut_chips(patches, score_map.mixer, scene.kernel_size, centres, size)
            lon, lat = pixels_to_lonlat(score_map, centres[:, 1], centres[:, 0])
        else:
            lon, lat = np.empty(0), np.empty(0)
        logger.info("segment close-ups: %s, %d of %d chips", name, len(chosen), total)
        return close_ups_figure(
            name, chips, cut_heat(score_map.probability, centres, size), chosen,
            total=total, threshold=threshold, known_rc=known_rc, found_rc=found_rc,
            tolerance_px=tolerance_px, pixel_m=pixel_m,
            captions=[f"lat {y:.5f}, lon {x:.5f}" for x, y in zip(lon, lat, strict=True)],
        )  # fmt: skip

    return {name: partial(draw, name) for name in score_maps}


def _model_metrics(
    detections: Mapping[str, gpd.GeoDataFrame],
    truth: Mapping[str, gpd.GeoDataFrame],
    score_maps: Mapping[str, ScoreMap],
    tolerances: Sequence[float],
    thresholds: Sequence[float],
    operating: float,
) -> dict[str, Any]:
    per_scene = {
        name: evaluate_scene(truth[name], table, tolerances, thresholds)
        for name, table in sorted(detections.items())
    }
    seconds = sum(m.seconds for m in score_maps.values())
    cells = sum(m.probability.size for m in score_maps.values())
    return {
        "overall": {f"{t:g}": rows for t, rows in combine_counts(per_scene.values()).items()},
        "per_scene": {
            name: {f"{t:g}": rows for t, rows in combine_counts([counts]).items()}
            for name, counts in per_scene.items()
        },
        "detections": int(
            sum((table["score"] >= operating).sum() for table in detections.values())
        ),
        "seconds": round(seconds, 3),
        "output_cells": int(cells),
        "seconds_per_megacell": round(seconds / max(cells, 1) * 1e6, 4),
        "stride_px": int(next(iter(score_maps.values())).stride) if score_maps else None,
    }


def evaluate_detections(
    fcn_candidates: Mapping[str, gpd.GeoDataFrame],
    baseline_candidates: Mapping[str, gpd.GeoDataFrame],
    truth: Mapping[str, gpd.GeoDataFrame],
    fcn_maps: Mapping[str, ScoreMap],
    baseline_maps: Mapping[str, ScoreMap],
    fcn_detection: Mapping[str, Any],
    baseline_detection: Mapping[str, Any],
    params: SegmentSettings,
) -> dict[str, Any]:
    """Precision, recall and F1 of both models at every tolerance and score threshold.

    The curves run over every distinct peak score down to ``evaluation.score_floor`` (the
    candidates; at most ``MAX_CURVE_POINTS`` of them, evenly spread), the listed
    ``evaluation.score_thresholds`` and the operating threshold, whose row the summary reports.
    Detections at the operating threshold are the same whether peaks are found at it or at the
    floor and then cut: a peak is suppressed only by a higher one.

    Returns:
        The ``segment_metrics.json`` content: settings, ``fcn`` and ``baseline`` sections
        (``overall`` and ``per_scene`` rows keyed by tolerance in metres, timing) and
        ``speedup_same_resolution``: how much faster the FCN covers a pixel than the classifier
        would at stride 1 (the classifier's time per scored cell times its cells per pixel).
    """
    settings = params.evaluation
    tolerances = [float(t) for t in settings.tolerances_m]

    def thresholds(
        candidates: Mapping[str, gpd.GeoDataFrame], detection: Mapping[str, Any]
    ) -> list[float]:
        scores = np.unique(
            np.concatenate([np.zeros(0), *(t["score"].to_numpy() for t in candidates.values())])
        )
        if len(scores) > MAX_CURVE_POINTS:
            scores = scores[np.linspace(0, len(scores) - 1, MAX_CURVE_POINTS).astype(int)]
        floor = float(settings.score_floor)
        listed = [float(t) for t in settings.score_thresholds if float(t) >= floor]
        curve = {round(float(s), 4) for s in scores if s >= floor}
        # The operating threshold exactly: its row counts exactly the detections written.
        return sorted({float(detection["threshold"]), *listed, *curve})

    metrics: dict[str, Any] = {
        "tolerances_m": tolerances,
        "score_floor": float(settings.score_floor),
        "detection": {"fcn": dict(fcn_detection), "baseline": dict(baseline_detection)},
        "scenes": {
            name: {
                "known_dams": len(table),
                "non_finite_pixels": fcn_maps[name].non_finite_pixels if name in fcn_maps else 0,
            }
            for name, table in sorted(truth.items())
        },
        "fcn": _model_metrics(
            fcn_candidates, truth, fcn_maps, tolerances,
            thresholds(fcn_candidates, fcn_detection), float(fcn_detection["threshold"]),
        ),
    }  # fmt: skip
    if baseline_maps:
        baseline = _model_metrics(
            baseline_candidates, truth, baseline_maps, tolerances,
            thresholds(baseline_candidates, baseline_detection),
            float(baseline_detection["threshold"]),
        )  # fmt: skip
        metrics["baseline"] = baseline
        fcn_cost = metrics["fcn"]["seconds_per_megacell"]
        metrics["speedup_same_resolution"] = (
            round(baseline["seconds_per_megacell"] / fcn_cost, 1) if fcn_cost else None
        )
    return metrics


def precision_recall_plot(metrics: Mapping[str, Any], detection: DetectionSettings) -> Figure:
    """Precision-recall curves of the FCN and the baseline at ``detection.tolerance_m``."""
    return precision_recall_figure(metrics, f"{float(detection.tolerance_m):g}")


def summarize(metrics: Mapping[str, Any], detection: DetectionSettings) -> dict[str, Any]:
    """Log and return a short summary: scenes, detections, recall/precision at
    ``detection.tolerance_m`` and the detection threshold, time.
    """
    tolerance = f"{float(detection.tolerance_m):g}"
    summary: dict[str, Any] = {
        "scenes": len(metrics["scenes"]),
        "known_dams": sum(s["known_dams"] for s in metrics["scenes"].values()),
        "tolerance_m": float(tolerance),
    }
    lines = [f"segment: {summary['scenes']} scenes, {summary['known_dams']} known dams"]
    for model in ("fcn", "baseline"):
        if model not in metrics:
            continue
        threshold = float(metrics["detection"][model]["threshold"])
        row = at(metrics[model]["overall"], tolerance, threshold)
        summary[model] = {
            "detections": metrics[model]["detections"],
            "recall": row["recall"], "precision": row["precision"], "f1": row["f1"],
            "seconds": metrics[model]["seconds"],
        }  # fmt: skip
        lines.append(
            f"  {model:8s}: {row['tp'] + row['fp']} detections at score >= {row['threshold']:g}, "
            f"recall {row['recall']:.2f}, precision {row['precision']:.2f} at {tolerance} m, "
            f"{metrics[model]['seconds']:.1f} s"
        )
    if metrics.get("speedup_same_resolution"):
        summary["speedup_same_resolution"] = metrics["speedup_same_resolution"]
        lines.append(
            f"  FCN {metrics['speedup_same_resolution']:.0f}x faster per pixel than the sliding "
            "classifier at the same resolution"
        )
    summary["text"] = "\n".join(lines)
    logger.info(summary["text"])
    return summary
