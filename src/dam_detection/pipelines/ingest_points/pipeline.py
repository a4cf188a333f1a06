"""Wiring of ``ingest_points``: inventories and generated negatives in, the points table out.

The inventories are one catalog entry, ``point_sources`` (each source's file and reader
options), so the pipeline is the same whatever the environment declares. With the simulated
planet, its first node publishes the planet's inventories into that entry; with real imagery
it publishes nothing and the entry holds the user's files.
"""

from __future__ import annotations

from typing import Any

from kedro.pipeline import Node, Pipeline

from dam_detection.pipelines.ingest_points.nodes import (
    assign_splits,
    build_regions,
    build_report,
    combine_candidates,
    hold_out_scan_region,
    listed_bridges,
    listed_dams,
    plot_points_map,
    sample_random_points,
    sample_water_edge_points,
    select_points,
)
from dam_detection.pipelines.ingest_points.planet import audit_points, publish_planet_inventories
from dam_detection.pipelines.ingest_points.planet_gallery import render_planet_gallery
from dam_detection.pipelines.namespace import as_namespace
from dam_detection.pipelines.scan.region import scan_region_node

#: What other pipelines and users read; everything else stays inside the namespace.
PUBLIC_OUTPUTS = (
    "points", "ingest_points_report", "points_map", "point_sources", "planet_truth",
    "planet_lookalikes", "planet_gallery", "planet_audit", "scan_region", "inventory_dams",
    "inventory_bridges",
)  # fmt: skip


def create_pipeline(**kwargs: Any) -> Pipeline:
    """Build ``ingest_points``: sources → candidates → selected points → split table + report."""
    wired = Pipeline(
        [
            Node(build_regions, "params:ingest_points.regions", "regions",
                 name="build_regions"),
            Node(scan_region_node, "params:scan", "scan_region", name="build_scan_region"),
            Node(publish_planet_inventories,
                 ["regions", "scan_region", "params:image_source", "params:seed"],
                 ["point_sources", "planet_truth", "planet_lookalikes"],
                 name="publish_planet_inventories"),
            Node(sample_water_edge_points,
                 ["regions", "params:image_source",
                  "params:ingest_points.water_edges", "params:seed"],
                 "water_edges", name="sample_water_edge_points"),
            Node(sample_random_points,
                 ["regions", "params:ingest_points.random_negatives",
                  "params:seed"],
                 "random_points", name="sample_random_points"),
            Node(combine_candidates,
                 ["point_sources", "water_edges", "random_points"],
                 ["candidates", "summaries"],
                 name="combine_candidates"),
            Node(listed_dams, "candidates", "inventory_dams", name="listed_dams"),
            Node(listed_bridges, "candidates", "inventory_bridges", name="listed_bridges"),
            Node(hold_out_scan_region,
                 ["candidates", "scan_region", "params:ingest_points.hold_out_scan_region"],
                 "training_candidates", name="hold_out_scan_region"),
            Node(select_points,
                 ["training_candidates", "params:ingest_points.merge_distance_m",
                  "params:ingest_points.min_distance_to_dam_m", "params:ingest_points.sampling",
                  "params:seed"],
                 ["selected", "selection_stats"],
                 name="select_points"),
            Node(assign_splits,
                 ["selected", "params:ingest_points.split", "params:seed"],
                 ["points", "split_stats"], name="assign_splits"),
            Node(build_report,
                 ["summaries", "selection_stats",
                  "split_stats", "points"],
                 "ingest_points_report", name="build_ingest_points_report"),
            Node(plot_points_map, "points", "points_map", name="plot_points_map"),
            Node(audit_points, ["points", "planet_truth", "params:detection"],
                 "planet_audit", name="audit_points"),
            Node(render_planet_gallery,
                 ["planet_truth", "planet_lookalikes", "params:image_source", "params:bands",
                  "params:patch_radius", "params:seed", "params:gee_export.composite",
                  "params:gee_export.patches", "params:gee_export.gallery"],
                 "planet_gallery", name="render_planet_gallery"),
        ]
    )  # fmt: skip
    return as_namespace(wired, "ingest_points", PUBLIC_OUTPUTS)
