"""The train settings: defaults, validation, and the split files a training reads.

Kedro validates ``params:train`` against :class:`~.settings.TrainSettings` before the run;
``resolve_settings`` adds the shared values (bands, seed, patch radius, detection) and checks
what depends on them. The result is also the Sacred run's config.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dam_detection.bands import PIXEL_SIZE_M, validate_band_names
from dam_detection.datasets.tfrecord_files import TFRecordFiles
from dam_detection.detection.settings import DetectionSettings
from dam_detection.pipelines.train.settings import TrainSettings


def resolve_settings(
    train: TrainSettings,
    seed: int,
    bands: Sequence[str],
    patch_radius: int,
    detection: DetectionSettings,
) -> dict[str, Any]:
    """Complete train settings: ``params:train`` plus the shared values it depends on.

    Args:
        train: ``params:train`` (validated by Kedro against :class:`TrainSettings`).
        seed: ``params:seed``; drives every random step.
        bands: ``params:bands``, used unless ``train.bands`` is set.
        patch_radius: ``params:patch_radius`` of the shards.
        detection: ``params:detection``: how the FCN's detection threshold is chosen.

    Returns:
        The settings as a plain dictionary (the Sacred config), with ``bands`` resolved and
        ``seed``, ``patch_radius`` and ``detection`` (in pixels) added.

    Raises:
        ValueError: For an invalid band list or a crop larger than the patch.
    """
    settings = train.model_dump()
    settings["bands"] = list(validate_band_names(train.bands or bands))
    settings["seed"] = int(seed)
    settings["patch_radius"] = int(patch_radius)
    settings["detection"] = {
        "tolerance_px": float(detection.tolerance_m) / PIXEL_SIZE_M,
        "min_distance_px": int(detection.min_distance_px),
        "smoothing_px": float(detection.smoothing_px),
        "views": int(detection.views),
        "threshold_beta": float(detection.threshold_beta),
    }
    size = 2 * int(patch_radius) + 1
    for model in ("classifier", "fcn"):
        crop = int(settings[model]["crop_size"])
        if crop > size:
            raise ValueError(
                f"train.{model}.crop_size {crop} is larger than the {size} px patches "
                f"(patch_radius {patch_radius}); lower it to at most {size}"
            )
    return settings


def check_shards_match(
    band_stats: Mapping[str, Any], bands: Sequence[str], patch_radius: int
) -> None:
    """Check that the shards hold what the settings expect, by name, before training.

    Args:
        band_stats: ``stats.json`` (``band_order`` and ``patch_size_px`` since they were
            recorded; older files are checked for their bands only).
        bands: The bands the models will take.
        patch_radius: ``params:patch_radius``.

    Raises:
        ValueError: Saying plainly what differs and what to do.
    """
    held = list(band_stats.get("band_order") or band_stats.get("bands", {}))
    missing = [band for band in bands if band not in held]
    if missing:
        raise ValueError(
            f"the shards hold bands {held} but training needs {list(bands)} (missing "
            f"{missing}): re-run shard_tfrecords with these bands, or set train.bands to bands "
            "the shards hold"
        )
    size = band_stats.get("patch_size_px")
    expected = 2 * int(patch_radius) + 1
    if size is not None and int(size) != expected:
        raise ValueError(
            f"the shards are {size} px, patch_radius {patch_radius} expects {expected}: set "
            f"patch_radius to {(int(size) - 1) // 2}, or re-run gee_export and shard_tfrecords"
        )


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
