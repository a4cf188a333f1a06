"""Benchmark the train input pipeline against the seed study's and against tensors in memory.

Measures, in one process on synthetic shards of the default size (257 x 257 x 5):

1. examples per second delivered by the seed's plain pipeline (one ``TFRecordDataset``,
   ``shuffle``, ``map(parse_single_example)``, ``batch``) and by ours (``make_train_dataset``);
2. the classifier's training step time reading shards through our pipeline (default settings,
   steady-state epochs: the first fills the window cache) versus the same batches already in
   memory as tensors.

Our first epoch and our pipeline without the cache are reported too.

Runs alternate (A, B, A, B ...) so that load from other processes hits both sides alike; medians
are reported, and for the step time also the median of the per-repeat ratios. Usage::

    .venv/bin/python benchmarks/train_input.py [--records 192] [--shards 8] [--repeats 10]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from dam_detection.bands import DEFAULT_BANDS  # noqa: E402
from dam_detection.pipelines.train.config import resolve_settings  # noqa: E402
from dam_detection.pipelines.train.input_pipeline import (  # noqa: E402
    make_patch_spec,
    make_train_dataset,
)
from dam_detection.pipelines.train.models import build_classifier  # noqa: E402
from dam_detection.pipelines.train.training import configure_determinism  # noqa: E402
from tests.pipelines.train.synthetic import write_synthetic_shards  # noqa: E402

RADIUS = 128


def seed_pipeline(paths: list[str], batch_size: int, buffer: int) -> tf.data.Dataset:
    """The seed study's input: one reader, shuffle, per-record parse, batch."""
    size = 2 * RADIUS + 1
    spec = {b: tf.io.FixedLenFeature([size * size], tf.float32) for b in DEFAULT_BANDS}
    spec["label"] = tf.io.FixedLenFeature([1], tf.float32)

    def parse(record: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        parsed = tf.io.parse_single_example(record, spec)
        image = tf.stack([tf.reshape(parsed[b], [size, size]) for b in DEFAULT_BANDS], axis=-1)
        return image, parsed["label"]

    dataset = tf.data.TFRecordDataset(paths, compression_type="GZIP")
    return dataset.shuffle(buffer, seed=0).map(parse).batch(batch_size)


def examples_per_second(dataset: tf.data.Dataset) -> float:
    """Examples per second over one full pass."""
    start, count = time.perf_counter(), 0
    for batch in dataset:
        count += int(tf.shape(batch[0])[0])
    return count / (time.perf_counter() - start)


def seconds_per_step(model: keras.Model, dataset: tf.data.Dataset) -> float:
    """Mean wall time of one training step over one epoch of ``dataset``."""
    start, steps = time.perf_counter(), 0
    for images, labels, weights in dataset:
        model.train_on_batch(images, labels, sample_weight=weights)
        steps += 1
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=192)
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    settings = resolve_settings(None, 42, DEFAULT_BANDS, RADIUS)
    section = settings["classifier"]
    configure_determinism(settings["seed"])
    with tempfile.TemporaryDirectory(prefix="train-bench-") as folder:
        started = time.perf_counter()
        stats, _ = write_synthetic_shards(
            Path(folder),
            radius=RADIUS,
            records={"train": args.records},
            shards_per_split=args.shards,
        )
        print(f"wrote {args.records} records in {time.perf_counter() - started:.1f} s")
        paths = sorted(str(p) for p in (Path(folder) / "train").glob("*.gz"))
        files = [(p, "GZIP") for p in paths]
        spec = make_patch_spec(DEFAULT_BANDS, RADIUS, stats)
        kwargs = {
            "target": "label",
            "crop_size": section["crop_size"],
            "jitter": section["jitter"],
            "batch_size": section["batch_size"],
            "seed": settings["seed"],
            "augmentation": settings["augmentation"],
        }
        ours = make_train_dataset(files, spec, input_settings=settings["input"], **kwargs)
        first_pass = examples_per_second(
            make_train_dataset(files, spec, **dict(kwargs, input_settings=settings["input"]))
        )
        uncached = make_train_dataset(
            files, spec, **dict(kwargs, input_settings=dict(settings["input"], cache=False))
        )
        seed = seed_pipeline(paths, section["batch_size"], buffer=64)
        in_memory = tf.data.Dataset.from_tensor_slices(
            tuple(tf.concat(parts, 0) for parts in zip(*list(ours), strict=True))
        ).batch(section["batch_size"])
        model = build_classifier("residual_cnn", DEFAULT_BANDS, section["crop_size"], 16)
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy")
        seconds_per_step(model, in_memory)  # trace the step once
        rates = {"seed": [], "ours": [], "uncached": []}
        steps = {"shards": [], "memory": []}
        for _ in range(args.repeats):
            rates["seed"].append(examples_per_second(seed))
            rates["ours"].append(examples_per_second(ours))
            rates["uncached"].append(examples_per_second(uncached))
            steps["shards"].append(seconds_per_step(model, ours))
            steps["memory"].append(seconds_per_step(model, in_memory))
    seed_rate, our_rate, uncached_rate = (
        statistics.median(rates[k]) for k in ("seed", "ours", "uncached")
    )
    shard_step, memory_step = (statistics.median(steps[k]) for k in ("shards", "memory"))
    # Each shard epoch runs right before its memory epoch: their ratio sees the same load from
    # other processes, so the median of these paired ratios is the robust estimate.
    paired = statistics.median(a / b for a, b in zip(steps["shards"], steps["memory"], strict=True))
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs")
    print(f"tensorflow {tf.__version__}, {args.records} records in {args.shards} shards")
    print(f"seed pipeline:  {seed_rate:8.1f} examples/s  (runs {rates['seed']})")
    print(f"ours, epoch 1:  {first_pass:8.1f} examples/s  (reads shards, fills the cache)")
    print(f"ours, epoch 2+: {our_rate:8.1f} examples/s  (runs {rates['ours']})")
    print(f"ours, no cache: {uncached_rate:8.1f} examples/s  (runs {rates['uncached']})")
    print(f"speed-up:       {our_rate / seed_rate:8.2f}x  (target >= 3)")
    print(f"step, shards:   {shard_step * 1e3:8.1f} ms  (runs {steps['shards']})")
    print(f"step, memory:   {memory_step * 1e3:8.1f} ms  (runs {steps['memory']})")
    print(f"step ratio:     {shard_step / memory_step:8.3f}  (ratio of medians)")
    print(f"paired ratio:   {paired:8.3f}  (median of per-repeat ratios, target <= 1.1)")


if __name__ == "__main__":
    main()
