"""Wiring of ``shard_tfrecords``: plan the pass (its ``shards`` save runs it), then summarise."""

from __future__ import annotations

from typing import Any

from kedro.pipeline import Node, Pipeline

from dam_detection.pipelines.namespace import as_namespace
from dam_detection.pipelines.shard_tfrecords.nodes import plan_shard_tasks, summarize_shards

#: What other pipelines and users read; everything else stays inside the namespace.
PUBLIC_OUTPUTS = ("shards", "band_stats", "shard_report")


def create_pipeline(**kwargs: Any) -> Pipeline:
    """Create the ``shard_tfrecords`` pipeline."""
    wired = Pipeline(
        [
            Node(
                plan_shard_tasks,
                inputs=[
                    "patches",
                    "points",
                    "params:bands",
                    "params:patch_radius",
                    "params:seed",
                    "params:shard_tfrecords",
                ],
                outputs="shards",
                name="write_shards",
            ),
            Node(
                summarize_shards,
                inputs=["shards", "params:bands", "params:patch_radius"],
                outputs=["band_stats", "shard_report"],
                name="summarize_shards",
            ),
        ]
    )
    return as_namespace(wired, "shard_tfrecords", PUBLIC_OUTPUTS)
