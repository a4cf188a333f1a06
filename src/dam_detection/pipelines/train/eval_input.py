"""Evaluation input: validation and test records in file order, centre-cropped, never
augmented, and the same records shaped as ``model.fit`` validation data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
import tensorflow as tf

from dam_detection.pipelines.train.augmentation import other_dams_weight, point_maps
from dam_detection.pipelines.train.input_pipeline import (
    AUTOTUNE,
    PatchSpec,
    disk_weighted,
    parse_batch,
    read_records,
    stream_options,
)


def make_eval_dataset(
    files: Sequence[tuple[str, str]],
    spec: PatchSpec,
    *,
    crop_size: int | None,
    batch_size: int,
    autotune: bool,
) -> tf.data.Dataset:
    """Records in file order, centre-cropped, never augmented: for validation and test.

    Args:
        files: ``(path, compression)`` of the split's shards.
        spec: Bands, patch size and normalisation.
        crop_size: Pixels across the centre crop; ``None`` keeps the whole patch.
        batch_size: Records per batch.
        autotune: ``train.input.autotune`` (:func:`.stream_options`).

    Returns:
        Batches of ``{"image", "label", "point_index"}``.
    """
    window = spec.size if crop_size is None else min(crop_size, spec.size)
    dataset = read_records(files, shuffle_seed=None, parallel_reads=1)
    dataset = dataset.batch(batch_size).map(
        lambda raw: parse_batch(raw, spec, window), num_parallel_calls=AUTOTUNE
    )
    return dataset.prefetch(AUTOTUNE).with_options(stream_options(autotune))


def as_validation(
    dataset: tf.data.Dataset,
    target: Literal["label", "fcn"],
    fcn_target: Mapping[str, float] | None = None,
) -> tf.data.Dataset:
    """Adapt an eval dataset (centre crops) to ``model.fit(validation_data=...)``.

    The classifier gets ``(image, label)``; the FCN gets the same ``(image, target_map,
    weight_map)`` as in training with the point at the crop centre, so its validation loss
    measures what its training loss does.
    """
    radii = fcn_target or {}

    def pairs(batch: dict[str, tf.Tensor]) -> tuple[tf.Tensor, ...]:
        images, labels = batch["image"], batch["label"]
        if target == "label":
            return images, labels[:, tf.newaxis]
        centred = tf.zeros([tf.shape(images)[0], 2], tf.int32)
        maps, weight = point_maps(
            centred,
            images.shape[1],
            labels,
            float(radii["target_radius"]),
            float(radii["ignore_radius"]),
        )
        weight *= other_dams_weight(
            centred, images.shape[1], batch["other_dams"], float(radii["other_dams_ignore_radius"])
        )
        return images, maps, disk_weighted(maps[..., 0], weight[..., 0], radii)

    return dataset.map(pairs)


def collect(dataset: tf.data.Dataset) -> dict[str, np.ndarray]:
    """Concatenate an eval dataset into NumPy arrays (small splits only)."""
    parts: dict[str, list[np.ndarray]] = {}
    for batch in dataset.as_numpy_iterator():
        for key, value in batch.items():
            parts.setdefault(key, []).append(value)
    if not parts:
        raise ValueError("the split has no records: check shard_tfrecords' report")
    return {key: np.concatenate(values) for key, values in parts.items()}
