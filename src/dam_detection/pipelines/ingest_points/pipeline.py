"""Wiring of ``ingest_points``: inventories and generated negatives in, the points table out.

The inventories are one catalog entry, ``point_sources`` (each source's file and reader
options), so the pipeline is the same whatever the environment declares.
"""

from __future__ import annotations

from typing import Any

from kedro.pipeline import Node, Pipeline

from dam_detection.pipelines.ingest_points.nodes import (
    assign_splits,
    build_regions,
    build_report,
    combine_candidates,
    plot_points_map,
    sample_random_points,
    sample_water_edge_points,
    select_points,
)


def create_pipeline(**kwargs: Any) -> Pipeline:
    """Build ``ingest_points``: sources → candidates → selected points → split table + report."""
    return Pipeline(
        [
            Node(build_regions, "params:ingest_points.regions", "ingest_points_regions",
                 name="build_regions"),
            Node(sample_water_edge_points,
                 ["ingest_points_regions", "params:image_source",
                  "params:ingest_points.water_edges", "params:seed"],
                 "ingest_points_water_edges", name="sample_water_edge_points"),
            Node(sample_random_points,
                 ["ingest_points_regions", "params:ingest_points.random_negatives",
                  "params:seed"],
                 "ingest_points_random", name="sample_random_points"),
            Node(combine_candidates,
                 ["point_sources", "ingest_points_water_edges", "ingest_points_random"],
                 ["ingest_points_candidates", "ingest_points_summaries"],
                 name="combine_candidates"),
            Node(select_points,
                 ["ingest_points_candidates", "params:ingest_points.merge_distance_m",
                  "params:ingest_points.min_distance_to_dam_m", "params:ingest_points.sampling",
                  "params:seed"],
                 ["ingest_points_selected", "ingest_points_selection_stats"],
                 name="select_points"),
            Node(assign_splits,
                 ["ingest_points_selected", "params:ingest_points.split", "params:seed"],
                 ["points", "ingest_points_split_stats"], name="assign_splits"),
            Node(build_report,
                 ["ingest_points_summaries", "ingest_points_selection_stats",
                  "ingest_points_split_stats", "points"],
                 "ingest_points_report", name="build_ingest_points_report"),
            Node(plot_points_map, "points", "points_map", name="plot_points_map"),
        ]
    )  # fmt: skip
