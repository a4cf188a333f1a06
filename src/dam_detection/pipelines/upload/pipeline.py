"""Wiring of ``upload``: heatmaps -> Earth Engine image assets. Not part of ``kedro run``:
run it as ``kedro run --pipelines upload --env earthengine``.
"""

from __future__ import annotations

from typing import Any

from kedro.pipeline import Node, Pipeline

from dam_detection.pipelines.namespace import as_namespace
from dam_detection.pipelines.upload.nodes import plan_heatmap_ingestion

#: What users read; everything else stays inside the namespace.
PUBLIC_OUTPUTS = ("heatmap_ingestion",)


def create_pipeline(**kwargs: Any) -> Pipeline:
    """The ``upload`` pipeline."""
    wired = Pipeline(
        [
            Node(
                plan_heatmap_ingestion,
                inputs=[
                    "segment_heatmaps",
                    "fcn_model_metadata",
                    "params:image_source",
                    "params:upload",
                ],
                outputs="heatmap_ingestion",
                name="plan_heatmap_ingestion",
            )
        ]
    )
    return as_namespace(wired, "upload", PUBLIC_OUTPUTS)
