"""Nodes of the train pipeline: fingerprint the inputs, train both models, report.

Training writes files outside the catalog in two documented places, both taken from the
``train_run_folders`` dataset: Keras' checkpoint folder, and Sacred's observer folder, written by
the :func:`~.sacred_run.recorded` wrapper that ``pipeline.py`` applies to the training nodes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

import keras
import pandas as pd
from matplotlib.figure import Figure

from dam_detection.datasets.tfrecord_files import TFRecordFiles
from dam_detection.detection.settings import DetectionSettings
from dam_detection.model_metadata import model_metadata, weights_fingerprint
from dam_detection.pipelines.train import plots
from dam_detection.pipelines.train.config import (
    check_shards_match,
    class_weights,
    resolve_settings,
    split_files,
)
from dam_detection.pipelines.train.input_pipeline import make_patch_spec
from dam_detection.pipelines.train.jobs import train_classifier_job, train_fcn_job
from dam_detection.pipelines.train.settings import TrainSettings

_SPLITS = ("train", "val", "test")


def fingerprint_inputs(shards: TFRecordFiles, band_stats: Mapping[str, Any]) -> dict[str, Any]:
    """Content hashes of every shard file and of the statistics, for the Sacred config.

    Reads each shard once through the dataset's filesystem (a streaming hash, about a second per
    few hundred megabytes), so two runs on the same bytes share a fingerprint.

    Args:
        shards: The ``shards`` dataset.
        band_stats: ``stats.json``.

    Returns:
        ``{"digest", "stats", "files": [{"path", "bytes", "blake2b"}, ...]}`` (a list: Sacred
        config keys may not contain dots).
    """
    files = []
    for path in shards.paths:
        digest = hashlib.blake2b(digest_size=16)
        size = 0
        with shards.filesystem.open(path, "rb") as handle:
            while chunk := handle.read(8 << 20):
                digest.update(chunk)
                size += len(chunk)
        files.append({"path": shards.relative(path), "bytes": size, "blake2b": digest.hexdigest()})
    stats = hashlib.blake2b(
        json.dumps(band_stats, sort_keys=True).encode(), digest_size=16
    ).hexdigest()
    overall = hashlib.blake2b(json.dumps([files, stats], sort_keys=True).encode(), digest_size=16)
    return {"digest": overall.hexdigest(), "stats": stats, "files": files}


def resolve_train_settings(
    train: TrainSettings,
    seed: int,
    bands: Sequence[str],
    patch_radius: int,
    detection: DetectionSettings,
    band_stats: Mapping[str, Any],
    fingerprint: Mapping[str, Any],
) -> dict[str, Any]:
    """The complete, validated train settings: the Sacred config of both trainings.

    Args:
        train: ``params:train``.
        seed: ``params:seed``.
        bands: ``params:bands`` (``train.bands`` overrides it).
        patch_radius: ``params:patch_radius``.
        detection: ``params:detection``.
        band_stats: ``stats.json``: what the shards hold, checked against the settings before
            any training starts (so a mismatch leaves no failed Sacred run behind).
        fingerprint: Output of :func:`fingerprint_inputs`.

    Returns:
        Settings with every default filled in and ``inputs`` (the fingerprint) added.
    """
    check_shards_match(band_stats, train.bands or bands, patch_radius)
    settings = resolve_settings(train, seed, bands, patch_radius, detection)
    settings["inputs"] = dict(fingerprint)
    return settings


def _common(
    shards: TFRecordFiles,
    band_stats: Mapping[str, Any],
    points: pd.DataFrame,
    settings: Mapping[str, Any],
) -> dict[str, Any]:
    train_labels = points.loc[points["split"] == "train", "label"].tolist()
    return {
        "settings": settings,
        "spec": make_patch_spec(settings["bands"], settings["patch_radius"], band_stats),
        "files": {split: split_files(shards, split) for split in _SPLITS},
        "weights": class_weights(train_labels, settings["class_balance"]),
        "kind_of": dict(
            zip(points["point_index"].astype(int), points["kind"].astype(str), strict=True)
        ),
    }


def train_classifier(
    shards: TFRecordFiles,
    band_stats: Mapping[str, Any],
    points: pd.DataFrame,
    settings: Mapping[str, Any],
    run_folders: Mapping[str, Any],
) -> tuple[keras.Model, dict[str, Any], dict[str, Any], Figure]:
    """Train the patch classifier and evaluate it on the test split (recorded by Sacred where
    the pipeline is wired: :func:`.sacred_run.recorded`).

    Args:
        shards: Train/val/test shard files.
        band_stats: ``stats.json`` (normalisation and display stretch).
        points: Points table (class balance from its train split, kinds for the breakdown).
        settings: Output of :func:`resolve_train_settings`.
        run_folders: ``train_run_folders``: the checkpoint folder (and Sacred's, for the
            wrapper).

    Returns:
        The model (best epoch), its results (report and test scores), its metadata
        (:mod:`dam_detection.model_metadata`) and the gallery of the worst test errors.
    """
    result = train_classifier_job(
        **_common(shards, band_stats, points, settings), band_stats=band_stats, folders=run_folders
    )
    results = {"report": result["report"], "scored": [a.tolist() for a in result["scored"]]}
    crop = int(settings["classifier"]["crop_size"])
    metadata = model_metadata(
        "classifier", settings["bands"], settings["patch_radius"], None, input_size_px=crop,
        weights_sha256=weights_fingerprint(result["model"].get_weights()),
    )  # fmt: skip
    return result["model"], results, metadata, result["gallery"]


def train_fcn(
    shards: TFRecordFiles,
    band_stats: Mapping[str, Any],
    points: pd.DataFrame,
    settings: Mapping[str, Any],
    run_folders: Mapping[str, Any],
) -> tuple[keras.Model, dict[str, Any], dict[str, Any]]:
    """Train the dilated fully convolutional network; score test centre pixels (recorded by
    Sacred where the pipeline is wired).

    Args:
        shards: Train/val/test shard files.
        band_stats: ``stats.json``.
        points: Points table.
        settings: Output of :func:`resolve_train_settings`.
        run_folders: ``train_run_folders``.

    Returns:
        The model (best epoch), its results and its metadata.
    """
    result = train_fcn_job(**_common(shards, band_stats, points, settings), folders=run_folders)
    results = {"report": result["report"], "scored": [a.tolist() for a in result["scored"]]}
    field = int(result["report"]["receptive_field_px"])
    metadata = model_metadata(
        "fcn", settings["bands"], settings["patch_radius"], field, input_size_px=None,
        weights_sha256=weights_fingerprint(result["model"].get_weights()),
    )  # fmt: skip
    return result["model"], results, metadata


def report_training(
    classifier_results: Mapping[str, Any],
    fcn_results: Mapping[str, Any],
    settings: Mapping[str, Any],
) -> tuple[dict[str, Any], Figure, Figure, Figure]:
    """Metrics of both models in one JSON document, and the figures that compare them.

    Args:
        classifier_results: From :func:`train_classifier`.
        fcn_results: From :func:`train_fcn`.
        settings: Output of :func:`resolve_train_settings`.

    Returns:
        ``train_metrics`` and the training-curve, ROC/PR and confusion-matrix figures.
    """
    reports = {"classifier": classifier_results["report"], "fcn": fcn_results["report"]}
    scored = {
        "classifier": classifier_results["scored"],
        "fcn (centre pixel)": fcn_results["scored"],
    }
    train_metrics = {
        "bands": list(settings["bands"]),
        "seed": settings["seed"],
        "patch_radius": settings["patch_radius"],
        "inputs_digest": settings["inputs"]["digest"],
        # Where the models were trained (recorded by the Sacred wrapper); results differ
        # slightly between CPU kinds, bit-identical on one.
        "machine": reports["fcn"].get("machine") or reports["classifier"].get("machine"),
        "classifier": {k: v for k, v in reports["classifier"].items() if k != "history"},
        "fcn": {k: v for k, v in reports["fcn"].items() if k != "history"},
        "history": {name: report["history"] for name, report in reports.items()},
    }
    return (
        train_metrics,
        plots.training_curves(train_metrics["history"]),
        plots.roc_pr_curves(scored),
        plots.confusion_matrices({n: r["test"]["confusion"] for n, r in reports.items()}),
    )
