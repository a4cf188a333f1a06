"""The two trainings: build data and model, fit, evaluate. They know nothing of Sacred: the
nodes that call them are wrapped by :func:`.sacred_run.recorded` where the pipeline is wired.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np

from dam_detection.detection import threshold as peaks
from dam_detection.detection.views import averaged_over_views
from dam_detection.model_layers import member_crossentropy
from dam_detection.pipelines.train import metrics, plots
from dam_detection.pipelines.train.eval_input import as_validation, collect, make_eval_dataset
from dam_detection.pipelines.train.input_pipeline import (
    PatchSpec,
    fcn_target_settings,
    make_train_dataset,
    point_weight_table,
)
from dam_detection.pipelines.train.models import (
    build_classifier,
    fcn_from_settings,
    member_heatmaps,
    receptive_field,
    relief_from_settings,
)
from dam_detection.pipelines.train.sacred_run import config_fingerprint
from dam_detection.pipelines.train.training import (
    EpochProgress,
    EpochTimes,
    configure_determinism,
    configure_precision,
    fit_resumable,
    make_strategy,
    shard_options,
)

logger = logging.getLogger(__name__)

Files = Mapping[str, Sequence[tuple[str, str]]]


def _evaluate(
    labels: Mapping[str, np.ndarray],
    scores: Mapping[str, np.ndarray],
    kinds: Sequence[str],
) -> dict[str, Any]:
    """Threshold chosen on validation (best F1), then validation and test reports."""
    threshold = metrics.best_f1_threshold(labels["val"], scores["val"])
    test = metrics.binary_report(labels["test"], scores["test"], threshold)
    test["by_kind"] = metrics.report_by_kind(labels["test"], scores["test"], kinds, threshold)
    return {
        "threshold": threshold,
        "val": metrics.binary_report(labels["val"], scores["val"], threshold),
        "test": test,
    }


def _kinds(point_index: np.ndarray, kind_of: Mapping[int, str]) -> list[str]:
    return [kind_of.get(int(index), "unknown") for index in point_index]


def _fit(
    model_name: str,
    build: Any,
    settings: Mapping[str, Any],
    train_data: Any,
    validation_data: Any,
    loss: Any,
    model_metrics: list[Any],
    folders: Mapping[str, Any],
    strategy: Any,
    fitted_view: Callable[[keras.Model], keras.Model] | None = None,
) -> tuple[keras.Model, dict[str, Any]]:
    """Build, compile and fit ``build()`` (through ``fitted_view(model)`` when given: a model
    on the same layers with the outputs the loss needs), keeping the best epoch's weights.
    """
    section = settings[model_name]
    with strategy.scope():
        model = build()
        trained = fitted_view(model) if fitted_view is not None else model
        trained.compile(
            optimizer=keras.optimizers.Adam(float(section["learning_rate"])),
            loss=loss,
            metrics=model_metrics,
        )
    # The layer table is detail for the run's log file (conf/logging.yml), not the console.
    summary_logger = logging.getLogger("dam_detection.model_summary")
    trained.summary(print_fn=lambda line, *_, **__: summary_logger.info(line))
    if settings["input"]["cache"]:
        # Every epoch validates on the same windows: parse them once (about 1 s an epoch saved
        # on the default data; the values and their order do not change).
        validation_data = validation_data.cache()
    checkpoints = Path(folders["checkpoints"]) / f"{model_name}-{config_fingerprint(settings)}"
    times = EpochTimes()
    fitted = fit_resumable(
        trained,
        train_data,
        validation_data,
        epochs=int(section["epochs"]),
        checkpoint_dir=checkpoints,
        callback_settings={
            **settings["callbacks"],
            "learning_rate_schedule": section["learning_rate_schedule"],
        },
        verbose=settings["verbose"],
        extra_callbacks=[
            EpochProgress(model_name, int(section["epochs"]), settings["callbacks"]["monitor"]),
            times,
        ],
    )
    fitted["timing"] = times.summary()
    logger.info("%s: where the training time went %s", model_name, fitted["timing"])
    return model, fitted


def train_classifier_job(
    *,
    settings: Mapping[str, Any],
    spec: PatchSpec,
    files: Files,
    weights: tuple[float, float],
    kind_of: Mapping[int, str],
    band_stats: Mapping[str, Any],
    folders: Mapping[str, Any],
) -> dict[str, Any]:
    """Train, evaluate and record the patch classifier.

    Returns:
        ``{"model", "report", "gallery", "scored": (labels, scores)}``.
    """
    configure_determinism(settings["seed"])
    precision = configure_precision(bool(settings["mixed_precision"]))
    strategy = make_strategy(settings["distribute"]["strategy"])
    section = settings["classifier"]
    autotune = bool(settings["input"]["autotune"])
    train_data, crop, batch = _training_input(
        files, spec, settings, section, strategy, target="label", class_weights=weights
    )
    evaluation = {
        split: make_eval_dataset(
            files[split], spec, crop_size=crop, batch_size=batch, autotune=autotune
        )  # fmt: skip
        for split in ("val", "test")
    }

    def build() -> keras.Model:
        return build_classifier(
            section["architecture"],
            spec.bands,
            crop,
            width=int(section["width"]),
            dropout=float(section["dropout"]),
            relief=relief_from_settings(
                spec.bands, section["elevation_relief"], spec.mean, spec.std
            ),
        )

    model, fitted = _fit(
        "classifier",
        build,
        settings,
        train_data,
        as_validation(evaluation["val"], "label"),
        "binary_crossentropy",
        [keras.metrics.AUC(curve="PR", name="pr_auc"), keras.metrics.BinaryAccuracy("accuracy")],
        folders,
        strategy,
    )
    arrays = {split: collect(data) for split, data in evaluation.items()}
    scores = {
        split: model.predict(arrays[split]["image"], batch_size=batch, verbose=0)[:, 0]
        for split in arrays
    }
    labels = {split: arrays[split]["label"] for split in arrays}
    kinds = _kinds(arrays["test"]["point_index"], kind_of)
    report = {
        "precision": precision,
        "architecture": section["architecture"],
        "input_shape": [crop, crop, len(spec.bands)],
        "parameters": int(model.count_params()),
        **{
            key: fitted[key]
            for key in ("epochs_run", "best_epoch", "resumed_from", "history", "timing")
        },
        **_evaluate(labels, scores, kinds),
    }
    rgb = plots.to_rgb(arrays["test"]["image"], spec.bands, band_stats)
    gallery = plots.error_gallery(rgb, labels["test"], scores["test"], kinds, report["threshold"])
    scored = (labels["test"], scores["test"])
    return {"model": model, "report": report, "gallery": gallery, "scored": scored}


def _detection_threshold(scored: peaks.PatchPeaks, detection: Mapping[str, Any]) -> dict[str, Any]:
    """The peak threshold chosen on the whole validation patches' peaks (:mod:`.peaks`): what
    ``segment.detection.threshold: validation`` uses on scenes; and the lower threshold at which
    a peak confirms a listed dam (``confirmation``: what ``scan.matching.confirm_threshold:
    validation`` uses).
    """
    chosen = peaks.detection_threshold(scored.dams, scored.false_alarms,
                                       float(detection["threshold_beta"]))  # fmt: skip
    confirmation = peaks.confirmation_threshold(scored.dams, scored.non_dam_points)
    keys = ("tolerance_px", "min_distance_px", "smoothing_px", "views", "threshold_beta")
    return {**chosen, "confirmation": confirmation, **{key: detection[key] for key in keys}}


def validation_peaks(
    model: keras.Model,
    files: Sequence[tuple[str, str]],
    spec: PatchSpec,
    detection: Mapping[str, Any],
    batch: int,
    autotune: bool,
) -> peaks.PatchPeaks:
    """The peaks of every whole validation patch's heatmap (:func:`.peaks.patch_peak_scores`),
    from which train chooses its thresholds and ``benchmarks/scan_thresholds.py`` draws curves.

    Args:
        model: The FCN.
        files: ``(path, compression)`` of the validation shards.
        spec: Bands and normalisation.
        detection: ``tolerance_px``, ``min_distance_px``, ``smoothing_px`` and ``views``.
        batch: Patches per prediction.
        autotune: ``train.input.autotune``.
    """
    predict = averaged_over_views(model.predict_on_batch, int(detection["views"]))
    parts: list[peaks.PatchPeaks] = []
    for chunk in make_eval_dataset(files, spec, crop_size=None, batch_size=batch,
                                   autotune=autotune):  # fmt: skip
        heatmaps = predict(chunk["image"].numpy())[..., 0]
        parts.append(peaks.patch_peak_scores(
            np.asarray(heatmaps), chunk["label"].numpy(), float(detection["tolerance_px"]),
            int(detection["min_distance_px"]), other_dams=chunk["other_dams"].numpy(),
            smoothing_px=float(detection["smoothing_px"]),
        ))  # fmt: skip
    return peaks.PatchPeaks(*(np.concatenate(field) for field in zip(*parts, strict=True)))


def train_fcn_job(
    *,
    settings: Mapping[str, Any],
    spec: PatchSpec,
    files: Files,
    weights: tuple[float, float],
    kind_of: Mapping[int, str],
    folders: Mapping[str, Any],
) -> dict[str, Any]:
    """Train, evaluate (centre-pixel scores) and record the dilated FCN.

    The centre-pixel score of a patch depends only on the pixels within the receptive field, so
    evaluating on a centre window at least the receptive field wide gives exactly the score the
    whole patch would.

    Returns:
        ``{"model", "report", "scored": (labels, scores)}``.
    """
    configure_determinism(settings["seed"])
    precision = configure_precision(bool(settings["mixed_precision"]))
    strategy = make_strategy(settings["distribute"]["strategy"])
    section = settings["fcn"]
    autotune = bool(settings["input"]["autotune"])
    radii = fcn_target_settings(section)
    train_data, crop, batch = _training_input(
        files,
        spec,
        settings,
        section,
        strategy,
        target="fcn",
        class_weights=weights,
        fcn_target=radii,
        anywhere_fraction=float(section["anywhere_fraction"]),
        point_weights=point_weight_table(kind_of, section["kind_weights"]),
    )

    def build() -> keras.Model:
        return fcn_from_settings(spec.bands, section, spec.mean, spec.std)

    field = receptive_field(build())
    window = min(spec.size, max(crop, field + 2))
    evaluation = {
        split: make_eval_dataset(
            files[split], spec, crop_size=window, batch_size=batch, autotune=autotune
        )  # fmt: skip
        for split in ("val", "test")
    }
    # The validation loss picks the best epoch: measured on windows twice the training crop,
    # mostly pixels away from the point, it counts the false alarms around a point that a
    # scene is full of, not only the score at the point.
    validation = make_eval_dataset(files["val"], spec, crop_size=min(spec.size, 2 * crop),
                                   batch_size=batch, autotune=autotune)  # fmt: skip
    model, fitted = _fit(
        "fcn",
        build,
        settings,
        train_data,
        as_validation(validation, "fcn", radii),
        member_crossentropy,
        [],
        folders,
        strategy,
        fitted_view=member_heatmaps,
    )
    logger.info("%s: receptive field %d x %d pixels (%d m)", model.name, field, field, field * 10)
    labels, scores, test_points = _centre_scores(model, evaluation, batch)
    kinds = _kinds(test_points, kind_of)
    scored_peaks = validation_peaks(model, files["val"], spec, settings["detection"], batch,
                                    autotune)  # fmt: skip
    detection = _detection_threshold(scored_peaks, settings["detection"])
    logger.info("%s: detection threshold on whole validation patches %s", model.name, detection)
    report = {
        "precision": precision,
        "model_name": model.name,
        "receptive_field_px": field,
        "train_crop_size": crop,
        "centre_window_px": window,
        "parameters": int(model.count_params()),
        **{
            key: fitted[key]
            for key in ("epochs_run", "best_epoch", "resumed_from", "history", "timing")
        },
        **_evaluate(labels, scores, kinds),
        "detection": detection,
    }
    scored = (labels["test"], scores["test"])
    return {"model": model, "report": report, "scored": scored}


def _centre_scores(
    model: keras.Model, evaluation: Mapping[str, Any], batch: int
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], np.ndarray]:
    """Labels and centre-pixel scores of every evaluation split, and the test points' indices."""
    arrays = {split: collect(data) for split, data in evaluation.items()}
    scores = {}
    for split, array in arrays.items():
        maps = model.predict(array["image"], batch_size=batch, verbose=0)
        scores[split] = maps[:, maps.shape[1] // 2, maps.shape[2] // 2, 0]
    labels = {split: arrays[split]["label"] for split in arrays}
    return labels, scores, arrays["test"]["point_index"]


def _training_input(
    files: Mapping[str, Any],
    spec: Any,
    settings: Mapping[str, Any],
    section: Mapping[str, Any],
    strategy: Any,
    **model_specific: Any,
) -> tuple[Any, int, int]:
    """The train split's input pipeline for one model, sharded to fit ``strategy``.

    Returns:
        ``(dataset, crop_size, global_batch_size)``.
    """
    crop = int(section["crop_size"])
    batch = int(section["batch_size"]) * strategy.num_replicas_in_sync
    dataset = make_train_dataset(
        files["train"],
        spec,
        crop_size=crop,
        jitter=int(section["jitter"]),
        batch_size=batch,
        seed=settings["seed"],
        input_settings=settings["input"],
        augmentation=settings["augmentation"],
        **model_specific,
    ).with_options(shard_options(len(files["train"]), strategy))
    return dataset, crop, batch
