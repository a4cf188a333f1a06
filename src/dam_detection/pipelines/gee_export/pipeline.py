"""Wiring of ``gee_export``: points -> patches (+ gallery); scene definitions -> scenes."""

from __future__ import annotations

from typing import Any

from kedro.pipeline import Node, Pipeline

from dam_detection.pipelines.gee_export.nodes import (
    export_patches,
    export_scenes,
    render_patch_gallery,
)
from dam_detection.pipelines.namespace import as_namespace

#: Tag of the scene export: the ``segment`` pipeline's input, left out of the default run (its
#: last stage is the region scan, which reads the image source tile by tile).
SCENES_TAG = "scenes"

#: What other pipelines and users read; everything else stays inside the namespace.
PUBLIC_OUTPUTS = ("patches", "scenes", "patch_gallery")


def create_pipeline(**kwargs: Any) -> Pipeline:
    """The ``gee_export`` pipeline."""
    wired = Pipeline(
        [
            Node(
                export_patches,
                inputs=[
                    "points",
                    "params:image_source",
                    "params:bands",
                    "params:patch_radius",
                    "params:seed",
                    "params:gee_export.composite",
                    "params:gee_export.patches",
                ],
                outputs="patches",
                name="export_patches",
            ),
            Node(
                export_scenes,
                inputs=[
                    "params:image_source",
                    "params:gee_export.scenes",
                    "params:bands",
                    "params:seed",
                    "params:gee_export.composite",
                    "params:gee_export.scene_export",
                ],
                outputs="scenes",
                name="export_scenes",
                tags=[SCENES_TAG],
            ),
            Node(
                render_patch_gallery,
                inputs=["patches", "points", "params:gee_export.gallery"],
                outputs="patch_gallery",
                name="render_patch_gallery",
            ),
        ]
    )
    return as_namespace(wired, "gee_export", PUBLIC_OUTPUTS)
