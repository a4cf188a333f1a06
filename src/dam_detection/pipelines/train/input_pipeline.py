"""The tf.data input pipeline: block shuffle over shards, batched parsing, normalisation, crops.

Training order (the seed study's block shuffle): shard file order reshuffled every epoch →
several shards read in parallel and interleaved → parse in small batches, normalise with the
train split's ``stats.json`` and cut a window around the point (so the shuffle buffer holds small
windows, not 257 x 257 patches) → record-level shuffle buffer → batch → seeded crop jitter and
augmentation → prefetch. Every random step takes its seed from the run seed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import tensorflow as tf

from dam_detection.bands import (
    LABEL_KEY,
    NDWI_BAND,
    OPTICAL_BANDS,
    OTHER_DAMS_KEY,
    POINT_INDEX_KEY,
    REFLECTANCE_BANDS,
    PatchGeometry,
)
from dam_detection.pipelines.train.augmentation import (
    add_clouds,
    anywhere_offsets,
    augment_batch,
    crop_batch,
    mask_edges,
    other_dams_weight,
    point_maps,
    random_offsets,
)

AUTOTUNE = tf.data.AUTOTUNE
# Records parsed per vectorised parse call: large enough to amortise the op, small enough that
# the pre-shuffle grouping stays finer than the interleave.
_PARSE_BATCH = 16
# Bytes of read-ahead per open shard.
_READ_BUFFER = 8 << 20


@dataclass(frozen=True)
class PatchSpec:
    """What a record holds and how to normalise it.

    Attributes:
        bands: Band names in channel order.
        patch_radius: Record radius in pixels (``2r + 1`` across).
        mean: Per-band mean of the train split, in ``bands`` order.
        std: Per-band standard deviation (floored at 1e-6, as ``bands.normalize_bands``).
    """

    bands: tuple[str, ...]
    patch_radius: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @property
    def size(self) -> int:
        """Pixels across a record."""
        return PatchGeometry(self.patch_radius).size

    @property
    def optical(self) -> tuple[bool, ...]:
        """Per channel, whether photometric augmentation may touch it."""
        return tuple(band in OPTICAL_BANDS for band in self.bands)

    def channel(self, band: str) -> int | None:
        """The channel of ``band``, or ``None`` where the bands leave it out."""
        return self.bands.index(band) if band in self.bands else None

    @property
    def reflectance(self) -> tuple[int, ...]:
        """Channels that :func:`dam_detection.bands.masked_pixels` tests for 0."""
        return tuple(i for i, band in enumerate(self.bands) if band in REFLECTANCE_BANDS)


def make_patch_spec(
    bands: Sequence[str], patch_radius: int, band_stats: Mapping[str, Any]
) -> PatchSpec:
    """Build a :class:`PatchSpec` from ``stats.json`` (the ``bands`` mapping or the whole file).

    Raises:
        KeyError: If a band has no statistics.
    """
    stats = band_stats.get("bands", band_stats)
    missing = [band for band in bands if band not in stats]
    if missing:
        raise KeyError(
            f"no statistics for bands {missing} in stats.json; re-run shard_tfrecords with "
            "these bands or remove them from train.bands"
        )
    return PatchSpec(
        bands=tuple(bands),
        patch_radius=int(patch_radius),
        mean=tuple(float(stats[b]["mean"]) for b in bands),
        std=tuple(max(float(stats[b]["std"]), 1e-6) for b in bands),
    )


def read_records(
    files: Sequence[tuple[str, str]],
    *,
    shuffle_seed: int | None,
    parallel_reads: int,
) -> tf.data.Dataset:
    """Serialized records of ``files``; with a seed, in a new shard order every epoch.

    Args:
        files: ``(path, compression)`` pairs, compression ``"GZIP"`` or ``""`` (sniffed).
        shuffle_seed: Seed of the per-epoch shard order, or ``None`` to keep file order.
        parallel_reads: Shards open and interleaved at once.
    """
    if not files:
        raise ValueError("no shard files for this split: run shard_tfrecords first")
    paths, compressions = (list(column) for column in zip(*files, strict=True))
    dataset = tf.data.Dataset.from_tensor_slices((paths, compressions))
    if shuffle_seed is not None:
        dataset = dataset.shuffle(len(paths), seed=shuffle_seed, reshuffle_each_iteration=True)
    return dataset.interleave(
        lambda path, compression: tf.data.TFRecordDataset(
            path, compression_type=compression, buffer_size=_READ_BUFFER
        ),
        cycle_length=max(1, min(parallel_reads, len(paths))),
        block_length=1,
        # Parallel reads keep their order (deterministic=True): the seed fixes the stream.
        num_parallel_calls=AUTOTUNE,
        deterministic=True,
    )


def parse_batch(serialized: tf.Tensor, spec: PatchSpec, window: int) -> dict[str, tf.Tensor]:
    """Parse, normalise and centre-crop a batch of serialized Examples.

    Returns:
        ``image`` ``(B, window, window, C)`` normalised, ``label`` ``(B,)``, ``point_index``
        ``(B,)`` int64.
    """
    values = spec.size * spec.size
    features = {band: tf.io.FixedLenFeature([values], tf.float32) for band in spec.bands}
    features[LABEL_KEY] = tf.io.FixedLenFeature([1], tf.float32)
    features[POINT_INDEX_KEY] = tf.io.FixedLenFeature([1], tf.float32, default_value=[-1.0])
    features[OTHER_DAMS_KEY] = tf.io.VarLenFeature(tf.float32)
    parsed = tf.io.parse_example(serialized, features)
    image = tf.stack([parsed[band] for band in spec.bands], axis=-1)
    image = tf.reshape(image, [-1, spec.size, spec.size, len(spec.bands)])
    if window < spec.size:
        image = crop_batch(image, window, tf.zeros([tf.shape(image)[0], 2], tf.int32))
    normalised = (image - tf.constant(spec.mean)) / tf.constant(spec.std)
    if spec.reflectance:
        # The TensorFlow twin of bands.normalize_bands: masked pixels (0 in every reflectance
        # band) become 0, the mean, in every channel, as they will when segmenting a scene.
        raw = tf.gather(image, list(spec.reflectance), axis=-1)
        masked = tf.reduce_all(tf.equal(raw, 0.0), axis=-1, keepdims=True)
        normalised = tf.where(masked, tf.zeros_like(normalised), normalised)
    return {
        "image": normalised,
        "label": parsed[LABEL_KEY][:, 0],
        "point_index": tf.cast(tf.round(parsed[POINT_INDEX_KEY][:, 0]), tf.int64),
        "other_dams": _other_dams(parsed[OTHER_DAMS_KEY]),
    }


def _other_dams(sparse: tf.SparseTensor) -> tf.Tensor:
    """``(B, MAX_OTHER_DAMS, 2)`` offsets of other known dams, far away where there are fewer."""
    values = 2 * MAX_OTHER_DAMS
    dense = tf.sparse.to_dense(sparse, default_value=_FAR_PX)
    padded = tf.pad(dense, [[0, 0], [0, values]], constant_values=_FAR_PX)[:, :values]
    return tf.reshape(padded, [-1, MAX_OTHER_DAMS, 2])


#: Other known dams per patch that training leaves out of the loss (a patch of the default run
#: holds at most a few; beyond this many, the rest count as land).
MAX_OTHER_DAMS = 8
_FAR_PX = 1.0e4


def fcn_target_settings(fcn: Mapping[str, Any]) -> dict[str, float]:
    """The parts of ``train.fcn`` that turn a labelled point into the FCN's targets."""
    keys = ("target_radius", "ignore_radius", "positive_weight", "other_dams_ignore_radius")
    return {key: float(fcn[key]) for key in keys}


def disk_weighted(target: tf.Tensor, weight: tf.Tensor, radii: Mapping[str, float]) -> tf.Tensor:
    """Per-pixel loss weights with the dam disk weighted ``positive_weight`` times."""
    # A dam's disk is a dozen pixels of a crop of thousands: weighting them up keeps the loss
    # from being won by predicting "no dam" everywhere.
    return weight * (1.0 + (float(radii["positive_weight"]) - 1.0) * target)


def point_weight_table(
    kind_of: Mapping[int, str], kind_weights: Mapping[str, float] | None
) -> np.ndarray | None:
    """Loss weight of every point index from its kind (``train.fcn.kind_weights``).

    Returns:
        ``(max index + 1,)`` float32 weights, 1 for kinds not listed, or ``None`` when no kind
        is weighted.

    Raises:
        ValueError: If a weight is negative.
    """
    if not kind_weights or not kind_of:
        return None
    if any(float(weight) < 0 for weight in kind_weights.values()):
        raise ValueError(f"kind weights must be >= 0, got {dict(kind_weights)}")
    table = np.ones(max(int(index) for index in kind_of) + 1, np.float32)
    for index, kind in kind_of.items():
        table[int(index)] = float(kind_weights.get(kind, 1.0))
    return table


def _weight_of_points(point_index: tf.Tensor, table: np.ndarray) -> tf.Tensor:
    # Records without a point index (-1) or beyond the table weigh 1.
    known = (point_index >= 0) & (point_index < len(table))
    looked_up = tf.gather(tf.constant(table), tf.where(known, point_index, 0))
    return tf.where(known, looked_up, tf.ones_like(looked_up))


def make_train_dataset(
    files: Sequence[tuple[str, str]],
    spec: PatchSpec,
    *,
    target: Literal["label", "fcn"],
    crop_size: int,
    jitter: int,
    batch_size: int,
    seed: int,
    input_settings: Mapping[str, Any],
    augmentation: Mapping[str, Any],
    class_weights: tuple[float, float] = (1.0, 1.0),
    fcn_target: Mapping[str, float] | None = None,
    anywhere_fraction: float = 0.0,
    point_weights: np.ndarray | None = None,
) -> tf.data.Dataset:
    """The shuffled, augmented training stream, re-randomised every epoch.

    Args:
        files: ``(path, compression)`` of the train shards.
        spec: Bands and normalisation.
        target: ``label`` yields ``(image, label, weight)`` for the classifier; ``fcn`` yields
            ``(image, target_map, weight_map)`` for the fully convolutional network.
        crop_size: Pixels across the crops the model sees.
        jitter: Largest shift in pixels of the crop centre from the point.
        batch_size: Examples per batch (global batch under a distribution strategy).
        seed: The run seed; every random step derives its seed from it.
        input_settings: ``train.input``: ``parallel_reads``, ``shuffle_buffer``, ``cache``,
            ``autotune``.
        augmentation: ``train.augmentation``.
        class_weights: Loss weight of a non-dam and of a dam example.
        fcn_target: ``train.fcn``'s ``target_radius``, ``ignore_radius`` and
            ``positive_weight`` (loss weight of a target-disk pixel), fcn only.
        anywhere_fraction: Share of crops placed anywhere in the patch instead of around the
            point (fcn only): crops that miss the point are all negative, so every pixel of
            every patch can be a negative. Above 0 the whole patch is kept (and cached).
        point_weights: Extra loss weight per point index (:func:`point_weight_table`), e.g.
            hard negatives such as bridges weighted up; ``None`` weighs every point 1.

    Returns:
        A finite dataset: one pass is one epoch.
    """
    anywhere = float(anywhere_fraction) if target == "fcn" else 0.0
    window = spec.size if anywhere > 0 else min(spec.size, crop_size + 2 * max(jitter, 0))
    dataset = read_records(
        files, shuffle_seed=seed, parallel_reads=int(input_settings["parallel_reads"])
    )
    dataset = dataset.batch(_PARSE_BATCH).map(
        lambda raw: parse_batch(raw, spec, window), num_parallel_calls=AUTOTUNE
    )
    dataset = dataset.unbatch()
    if input_settings["cache"]:
        dataset = dataset.cache()
    dataset = dataset.shuffle(
        int(input_settings["shuffle_buffer"]), seed=seed + 1, reshuffle_each_iteration=True
    )
    dataset = dataset.batch(batch_size)
    seeds = tf.data.Dataset.random(seed=seed + 2, rerandomize_each_iteration=True).batch(2)
    weights = tf.constant(class_weights, tf.float32)

    def finish(batch: dict[str, tf.Tensor], batch_seed: tf.Tensor) -> tuple[tf.Tensor, ...]:
        images, labels = batch["image"], batch["label"]
        offsets = random_offsets(tf.shape(images)[0], jitter, batch_seed)
        if anywhere > 0:
            offsets = anywhere_offsets(offsets, window, crop_size, anywhere, batch_seed)
        images = crop_batch(images, crop_size, offsets)
        images = add_clouds(images, batch_seed, float(augmentation["clouds"]), spec.mean,
                            spec.std, spec.reflectance, spec.channel("B3"),
                            spec.channel(NDWI_BAND))  # fmt: skip
        images, masked = mask_edges(images, batch_seed, float(augmentation["masked_edge"]))
        example_weight = tf.gather(weights, tf.cast(labels > 0.5, tf.int32))
        if point_weights is not None:
            example_weight *= _weight_of_points(batch["point_index"], point_weights)
        if target == "label":
            images, _ = augment_batch(images, None, batch_seed, spec.optical, augmentation)
            return images, labels[:, tf.newaxis], example_weight
        radii = fcn_target or {}
        maps, pixel_weight = point_maps(
            offsets,
            crop_size,
            labels,
            float(radii["target_radius"]),
            float(radii["ignore_radius"]),
        )
        # Other dams the inventories list inside the patch are no negatives.
        pixel_weight *= other_dams_weight(
            offsets, crop_size, batch["other_dams"], float(radii["other_dams_ignore_radius"])
        )
        # Nothing is visible under a mask: no dam there either.
        extra = tf.concat([maps * (1.0 - masked), pixel_weight], axis=-1)
        images, moved = augment_batch(images, extra, batch_seed, spec.optical, augmentation)
        assert moved is not None  # extra maps in, extra maps out
        pixel_weight = disk_weighted(moved[..., 0], moved[..., 1], radii)
        pixel_weight *= example_weight[:, tf.newaxis, tf.newaxis]
        return images, moved[..., 0:1], pixel_weight

    dataset = tf.data.Dataset.zip(dataset, seeds).map(finish, num_parallel_calls=AUTOTUNE)
    return dataset.prefetch(AUTOTUNE).with_options(stream_options(input_settings["autotune"]))


def stream_options(autotune: bool) -> tf.data.Options:
    """Options of every train and evaluation stream (``train.input.autotune``).

    One thread per input op: the training step owns the cores' intra-op parallelism, and on a
    small machine input ops that fan out too would steal it (benchmarks/results_train.md).

    With tf.data's autotuning on, destroying an iterator waits for the iterator's autotuning
    thread, and Keras destroys one at the end of every epoch and of every validation: a third
    of the FCN's epochs stalled 3-4 s with both cores idle (a native stack of the stalled
    process shows the wait). Off, the streams still kept the steps fed on the default data:
    epochs of steps only, 1.7-1.8 cores busy (benchmarks/train_epochs.py).
    """
    options = tf.data.Options()
    options.threading.max_intra_op_parallelism = 1
    options.autotune.enabled = bool(autotune)
    return options
