"""The train settings: defaults, validation, and the split files a training reads.

``resolve_settings`` merges ``params:train`` over :data:`DEFAULTS`, resolves the band list and
checks the choices, so a misspelt option fails before any TensorFlow work starts. The result is
also the Sacred run's config.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from dam_detection.bands import validate_band_names
from dam_detection.datasets.tfrecord_files import TFRecordFiles

DEFAULTS: dict[str, Any] = {
    "bands": None,
    "input": {"parallel_reads": 4, "shuffle_buffer": 1024, "cache": True},
    "augmentation": {
        "flips": True,
        "rotations": True,
        "brightness": 0.1,
        "contrast": 0.1,
        "noise_std": 0.02,
        "masked_edge": 0.1,
    },
    "class_balance": "weights",
    "callbacks": {
        "monitor": "val_loss",
        "early_stopping_patience": 5,
        "learning_rate_schedule": "plateau",
        "reduce_lr_patience": 3,
        "reduce_lr_factor": 0.5,
        "min_learning_rate": 1e-5,
    },
    "distribute": {"strategy": "none"},
    "verbose": 2,
    "classifier": {
        "architecture": "residual_cnn",
        "crop_size": 64,
        "jitter": 8,
        "width": 16,
        "dropout": 0.2,
        "batch_size": 32,
        "epochs": 15,
        "learning_rate": 0.002,
    },
    "fcn": {
        "crop_size": 64,
        "jitter": 16,
        "width": 16,
        "dilations": [1, 2, 4, 8, 16],
        "target_radius": 2.0,
        "ignore_radius": 8.0,
        "positive_weight": 10.0,
        "anywhere_fraction": 0.5,
        "kind_weights": None,
        "detection_tolerance_px": 15.0,
        "detection_min_distance_px": 10,
        "batch_size": 16,
        "epochs": 60,
        "learning_rate": 0.002,
    },
}
_CHOICES = {
    ("class_balance",): ("weights", "none"),
    ("callbacks", "learning_rate_schedule"): ("plateau", "cosine"),
    ("distribute", "strategy"): ("none", "mirrored", "multi_worker"),
    ("classifier", "architecture"): ("residual_cnn", "plain_cnn", "mobilenet_v2"),
}


def _merge(base: dict[str, Any], override: Mapping[str, Any], trail: str = "train") -> None:
    for key, value in override.items():
        if key not in base:
            raise KeyError(f"unknown setting {trail}.{key}: known are {sorted(base)}")
        if isinstance(base[key], dict) and isinstance(value, Mapping):
            _merge(base[key], value, f"{trail}.{key}")
        else:
            base[key] = value


def resolve_settings(
    train_params: Mapping[str, Any] | None,
    seed: int,
    bands: Sequence[str],
    patch_radius: int,
) -> dict[str, Any]:
    """Complete train settings: ``params:train`` over the defaults, plus the shared values.

    Args:
        train_params: ``params:train`` (any subset of :data:`DEFAULTS`).
        seed: ``params:seed``; drives every random step.
        bands: ``params:bands``, used unless ``train.bands`` is set.
        patch_radius: ``params:patch_radius`` of the shards.

    Returns:
        The settings with ``bands`` resolved, ``seed`` and ``patch_radius`` added.

    Raises:
        KeyError: For an unknown setting.
        ValueError: For an invalid choice, band list or crop size.
    """
    settings = copy.deepcopy(DEFAULTS)
    _merge(settings, train_params or {})
    settings["bands"] = list(validate_band_names(settings["bands"] or bands))
    settings["seed"] = int(seed)
    settings["patch_radius"] = int(patch_radius)
    for trail, allowed in _CHOICES.items():
        value = settings
        for key in trail:
            value = value[key]
        if value not in allowed:
            raise ValueError(f"train.{'.'.join(trail)} is {value!r}: choose one of {allowed}")
    size = 2 * int(patch_radius) + 1
    for model in ("classifier", "fcn"):
        crop = int(settings[model]["crop_size"])
        if not 8 <= crop <= size:
            raise ValueError(
                f"train.{model}.crop_size {crop} must be between 8 and the patch size {size}"
            )
    return settings


def split_files(shards: TFRecordFiles, split: str) -> list[tuple[str, str]]:
    """``(path, compression)`` of a split's shard files, compression sniffed per file.

    Raises:
        FileNotFoundError: If the split has no files.
    """
    paths = shards.paths_under(split)
    if not paths:
        raise FileNotFoundError(
            f"no {split} shards under {shards.root}: run `kedro run --pipelines shard_tfrecords`"
        )
    return [(path, shards.compression_type(path)) for path in paths]


def class_weights(labels: Sequence[float], mode: str) -> tuple[float, float]:
    """Loss weights ``(non-dam, dam)`` that give both classes equal total weight, or ones."""
    if mode == "none":
        return (1.0, 1.0)
    total = len(labels)
    dams = sum(1 for label in labels if float(label) > 0.5)
    if dams == 0 or dams == total:
        return (1.0, 1.0)
    return (total / (2.0 * (total - dams)), total / (2.0 * dams))
