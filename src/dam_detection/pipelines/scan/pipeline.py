"""Wiring of the ``scan`` pipeline (see ``nodes.py`` for what each step does)."""

from __future__ import annotations

from typing import Any

from kedro.pipeline import Node, Pipeline

from dam_detection.pipelines.namespace import as_namespace
from dam_detection.pipelines.scan import nodes

#: What users read; everything else stays inside the namespace.
PUBLIC_OUTPUTS = (
    "scan_tiles",
    "scan_candidates_gpkg",
    "scan_candidates_geojson",
    "scan_candidates_csv",
    "scan_review",
    "scan_metrics",
    "scan_summary",
)


def create_pipeline(**kwargs: Any) -> Pipeline:
    """Tile the region, segment every tile on Dask, sort detections, review page, metrics."""
    wired = Pipeline(
        [
            Node(nodes.plan_scan_tiles, ["scan_region", "params:scan"], "scan_tiles",
                 name="plan_scan_tiles"),
            Node(nodes.scan_tiles_on_dask,
                 ["scan_tiles", "scan_store", "fcn_model", "fcn_model_metadata", "band_stats",
                  "inventory_dams", "train_metrics", "params:image_source", "params:seed",
                  "params:gee_export.composite", "params:detection", "params:scan"],
                 "scan_run", name="segment_tiles_on_dask"),
            Node(nodes.collect_detections,
                 ["scan_tiles", "scan_store", "scan_run", "scan_region", "params:detection"],
                 "merged_detections", name="merge_detections"),
            Node(nodes.sort_known_and_candidates,
                 ["merged_detections", "inventory_dams", "inventory_bridges", "scan_run",
                  "params:scan"],
                 "sorted_detections", name="sort_known_and_candidates"),
            Node(nodes.candidate_tables, "sorted_detections",
                 ["scan_candidates_gpkg", "scan_candidates_geojson", "scan_candidates_csv"],
                 name="write_candidates"),
            Node(nodes.review_page,
                 ["sorted_detections", "scan_store", "scan_run", "params:scan"],
                 "scan_review", name="build_review_page"),
            Node(nodes.evaluate,
                 ["sorted_detections", "planet_truth", "planet_lookalikes", "scan_region",
                  "scan_run", "params:detection", "params:scan", "params:seed"],
                 "scan_metrics", name="evaluate_scan"),
            Node(nodes.summarize, "scan_metrics", "scan_summary", name="summarize_scan"),
        ]
    )  # fmt: skip
    return as_namespace(wired, "scan", PUBLIC_OUTPUTS)
