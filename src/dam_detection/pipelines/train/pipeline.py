"""Wiring of the train pipeline: shards and statistics in, models, metrics and plots out."""

from __future__ import annotations

from typing import Any

from kedro.pipeline import Node, Pipeline

from dam_detection.pipelines.namespace import as_namespace
from dam_detection.pipelines.train.nodes import (
    fingerprint_inputs,
    report_training,
    resolve_train_settings,
    train_classifier,
    train_fcn,
)
from dam_detection.pipelines.train.sacred_run import recorded

#: What other pipelines and users read; everything else stays inside the namespace.
PUBLIC_OUTPUTS = (
    "classifier_model",
    "classifier_model_metadata",
    "fcn_model",
    "fcn_model_metadata",
    "train_metrics",
    "train_curves_plot",
    "train_roc_pr_plot",
    "train_confusion_plot",
    "train_error_gallery_plot",
)


def create_pipeline(**kwargs: Any) -> Pipeline:
    """Create the ``train`` pipeline."""
    wired = Pipeline(
        [
            Node(
                fingerprint_inputs,
                inputs=["shards", "band_stats"],
                outputs="inputs_fingerprint",
                name="fingerprint_train_inputs",
            ),
            Node(
                resolve_train_settings,
                inputs=[
                    "params:train",
                    "params:seed",
                    "params:bands",
                    "params:patch_radius",
                    "params:detection",
                    "band_stats",
                    "inputs_fingerprint",
                ],
                outputs="settings",
                name="resolve_train_settings",
            ),
            Node(
                recorded("dam_detection.train.classifier", train_classifier),
                inputs=["shards", "band_stats", "points", "settings", "train_run_folders"],
                outputs=[
                    "classifier_model",
                    "classifier_results",
                    "classifier_model_metadata",
                    "train_error_gallery_plot",
                ],
                name="train_classifier",
            ),
            Node(
                recorded("dam_detection.train.fcn", train_fcn),
                inputs=["shards", "band_stats", "points", "settings", "train_run_folders"],
                outputs=["fcn_model", "fcn_results", "fcn_model_metadata"],
                name="train_fcn",
            ),
            Node(
                report_training,
                inputs=["classifier_results", "fcn_results", "settings"],
                outputs=[
                    "train_metrics",
                    "train_curves_plot",
                    "train_roc_pr_plot",
                    "train_confusion_plot",
                ],
                name="report_training",
            ),
        ]
    )
    return as_namespace(wired, "train", PUBLIC_OUTPUTS)
