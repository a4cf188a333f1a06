"""Wiring of the ``segment`` pipeline (see ``nodes.py`` for what each step does)."""

from __future__ import annotations

from typing import Any

from kedro.pipeline import Node, Pipeline

from dam_detection.pipelines.namespace import as_namespace
from dam_detection.pipelines.segment import nodes, report_nodes

#: What other pipelines and users read; everything else stays inside the namespace.
PUBLIC_OUTPUTS = (
    "segment_heatmaps",
    "segment_predictions",
    "segment_detections",
    "segment_overlays",
    "segment_close_ups",
    "segment_metrics",
    "segment_precision_recall_plot",
    "segment_summary",
)


def create_pipeline(**kwargs: Any) -> Pipeline:
    """Predict, stitch, detect and evaluate every scene; baseline alongside."""
    wired = Pipeline(
        [
            Node(
                nodes.predict_heatmaps,
                [
                    "scenes",
                    "fcn_model",
                    "fcn_model_metadata",
                    "band_stats",
                    "params:segment",
                    "params:detection",
                ],
                "score_maps",
                name="predict_heatmaps",
            ),
            Node(
                nodes.slide_baseline,
                [
                    "scenes",
                    "classifier_model",
                    "classifier_model_metadata",
                    "band_stats",
                    "params:segment",
                ],
                "baseline_score_maps",
                name="slide_baseline_classifier",
            ),
            Node(
                nodes.heatmap_rasters,
                "score_maps",
                "segment_heatmaps",
                name="write_heatmap_geotiffs",
            ),
            Node(
                nodes.prediction_exports,
                ["score_maps", "params:segment"],
                "segment_predictions",
                name="write_earth_engine_predictions",
            ),
            Node(
                nodes.resolve_detection,
                ["params:segment", "params:detection", "train_metrics"],
                ["fcn_detection", "baseline_detection"],
                name="resolve_detection",
            ),
            Node(
                nodes.detect_candidates,
                ["score_maps", "fcn_detection", "params:segment"],
                "candidate_tables",
                name="detect_candidates",
            ),
            Node(
                nodes.detect_candidates,
                ["baseline_score_maps", "baseline_detection", "params:segment"],
                "baseline_candidate_tables",
                name="detect_candidates_baseline",
            ),
            Node(
                nodes.detect_dams,
                ["candidate_tables", "fcn_detection"],
                "detection_tables",
                name="detect_dams",
            ),
            Node(
                nodes.detect_dams,
                ["baseline_candidate_tables", "baseline_detection"],
                "baseline_detection_tables",
                name="detect_dams_baseline",
            ),
            Node(
                nodes.detections_geojson,
                ["detection_tables", "fcn_model_metadata"],
                "segment_detections",
                name="write_detections_geojson",
            ),
            Node(
                nodes.known_dams,
                ["scenes", "points", "params:segment"],
                "known_dams",
                name="known_dams",
            ),
            Node(
                report_nodes.overlay_figures,
                ["score_maps", "detection_tables", "known_dams"],
                "segment_overlays",
                name="draw_overlays",
            ),
            Node(
                report_nodes.close_up_figures,
                [
                    "scenes",
                    "score_maps",
                    "detection_tables",
                    "known_dams",
                    "fcn_detection",
                    "fcn_model_metadata",
                    "params:segment",
                    "params:detection",
                ],
                "segment_close_ups",
                name="draw_close_ups",
            ),
            Node(
                report_nodes.evaluate_detections,
                [
                    "candidate_tables",
                    "baseline_candidate_tables",
                    "known_dams",
                    "score_maps",
                    "baseline_score_maps",
                    "fcn_detection",
                    "baseline_detection",
                    "params:segment",
                ],
                "segment_metrics",
                name="evaluate_detections",
            ),
            Node(
                report_nodes.precision_recall_plot,
                ["segment_metrics", "params:detection"],
                "segment_precision_recall_plot",
                name="plot_precision_recall",
            ),
            Node(
                report_nodes.summarize,
                ["segment_metrics", "params:detection"],
                "segment_summary",
                name="summarize_segment",
            ),
        ]
    )
    return as_namespace(wired, "segment", PUBLIC_OUTPUTS)
