"""Where the FCN's training time goes: input, forward, backward, validation, thread settings.

On the shards of a project that ran the default pipelines up to ``shard_tfrecords`` (``--project``),
with the default train settings, each TensorFlow thread setting in its own process (threads are
fixed when TensorFlow starts):

- ``input_s``: one epoch of the training input alone, after the first epoch filled its cache;
- ``forward_s`` / ``step_s``: one batch's forward pass, and one training step (forward,
  backward, Adam), on a batch already in memory (median of 20);
- ``epoch_s``: one epoch of ``model.fit`` reading the input (the steps as training runs them);
- ``validation_s``: one pass over the validation windows, as every epoch runs it;
- with ``--xla``, each setting again with the steps compiled by XLA (without op determinism,
  which training keeps on and under which Keras does not compile);
- GFLOP/s of the training step (3x the forward FLOPs per pixel, the usual estimate), next to a
  float32 matrix multiply on the same threads (the ceiling).

Usage::

    .venv/bin/python benchmarks/train_fcn_time.py --project <default-run clone> \
        [--threads 2/2,2/1,1/1]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from markdown_table import print_table  # benchmarks/, beside this script

ROOT = Path(__file__).resolve().parents[1]


def measure(project: Path) -> dict:
    """This process's figures (its thread settings come from the environment)."""
    import tensorflow as tf

    intra, inter = (int(v) for v in os.environ["BENCH_THREADS"].split("/"))
    tf.config.threading.set_intra_op_parallelism_threads(intra)
    tf.config.threading.set_inter_op_parallelism_threads(inter)
    import keras
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    from dam_detection.pipelines.train import nodes
    from dam_detection.pipelines.train.config import split_files
    from dam_detection.pipelines.train.eval_input import as_validation, make_eval_dataset
    from dam_detection.pipelines.train.input_pipeline import (
        fcn_target_settings,
        make_patch_spec,
        make_train_dataset,
        point_weight_table,
    )
    from dam_detection.pipelines.train.models import fcn_from_settings, forward_flops_per_pixel
    from dam_detection.pipelines.train.training import configure_determinism

    bootstrap_project(project)
    with KedroSession.create(project_path=project) as session:
        context = session.load_context()
        shards = context.catalog.load("shards")
        stats = context.catalog.load("band_stats")
        points = context.catalog.load("points")
        params = context.params
    settings = nodes.resolve_train_settings(
        params["train"], params["seed"], params["bands"], params["patch_radius"],
        params["detection"], stats, {"digest": "benchmark"},
    )  # fmt: skip
    fcn = settings["fcn"]
    spec = make_patch_spec(settings["bands"], settings["patch_radius"], stats)
    kind_of = dict(zip(points["point_index"].astype(int), points["kind"].astype(str), strict=True))
    radii = fcn_target_settings(fcn)
    jit = os.environ.get("BENCH_JIT", "0") == "1"
    if jit:
        # Keras turns jit_compile off, with only a warning, while TensorFlow's op determinism
        # is on (training switches it on for reproducible runs): XLA is timed without it.
        keras.utils.set_random_seed(settings["seed"])
    else:
        configure_determinism(settings["seed"])
    train = make_train_dataset(
        split_files(shards, "train"), spec, target="fcn", crop_size=int(fcn["crop_size"]),
        jitter=int(fcn["jitter"]), batch_size=int(fcn["batch_size"]), seed=settings["seed"],
        input_settings=settings["input"], augmentation=settings["augmentation"],
        fcn_target=radii, anywhere_fraction=float(fcn["anywhere_fraction"]),
        point_weights=point_weight_table(kind_of, fcn["kind_weights"]),
    )  # fmt: skip
    validation = make_eval_dataset(
        split_files(shards, "val"), spec, crop_size=2 * int(fcn["crop_size"]),
        batch_size=int(fcn["batch_size"]), autotune=settings["input"]["autotune"],
    )  # fmt: skip
    validation = as_validation(validation, "fcn", radii).cache()
    model = fcn_from_settings(spec.bands, fcn, spec.mean, spec.std)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy",
                  jit_compile=jit)  # fmt: skip
    first = time.perf_counter()
    batches = sum(1 for _ in train)  # fills the cache
    first_s = time.perf_counter() - first
    start = time.perf_counter()
    for _ in train:
        pass
    input_s = time.perf_counter() - start
    images, target, weight = next(iter(train))
    forward = [], []
    for _ in range(22):
        start = time.perf_counter()
        model(images, training=False)
        forward[0].append(time.perf_counter() - start)
        start = time.perf_counter()
        model.train_on_batch(images, target, sample_weight=weight)
        forward[1].append(time.perf_counter() - start)
    forward_s, step_s = (statistics.median(times[2:]) for times in forward)
    sum(1 for _ in validation)  # fills the validation cache, as training does in its first epoch
    start = time.perf_counter()
    model.fit(train, epochs=1, verbose=0)
    epoch_s = time.perf_counter() - start
    start = time.perf_counter()
    model.evaluate(validation, verbose=0)
    validation_s = time.perf_counter() - start
    pixels = int(images.shape[0]) * int(images.shape[1]) * int(images.shape[2])
    flops_per_pixel = forward_flops_per_pixel(model)
    matrix = tf.random.uniform((2048, 2048))
    tf.linalg.matmul(matrix, matrix)
    start = time.perf_counter()
    for _ in range(5):
        tf.linalg.matmul(matrix, matrix).numpy()
    matmul_gflops = 5 * 2 * 2048**3 / (time.perf_counter() - start) / 1e9
    return {
        "threads": f"{intra}/{inter}" + (" XLA" if jit else ""), "batches_per_epoch": batches,
        "first_epoch_input_s": round(first_s, 2), "input_s": round(input_s, 2),
        "forward_s": round(forward_s, 4), "step_s": round(step_s, 4),
        "steps_per_epoch_s": round(step_s * batches, 1), "epoch_s": round(epoch_s, 1),
        "validation_s": round(validation_s, 2),
        "forward_mflop_per_pixel": round(flops_per_pixel / 1e6, 4),
        "step_gflops": round(3 * flops_per_pixel * pixels / step_s / 1e9, 1),
        "matmul_gflops": round(matmul_gflops, 1),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, required=True)
    parser.add_argument("--threads", default="2/2,2/1,1/1", help="intra/inter op threads")
    parser.add_argument("--xla", action="store_true", help="also compile the steps with XLA")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.project)))
        return
    rows = []
    settings = [(threads, "0") for threads in args.threads.split(",")]
    if args.xla:
        settings += [(threads, "1") for threads in args.threads.split(",")]
    for threads, jit in settings:
        env = {**os.environ, "BENCH_THREADS": threads, "BENCH_JIT": jit, "DO_NOT_TRACK": "1",
               "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT / "src")}  # fmt: skip
        out = subprocess.run([sys.executable, __file__, "--project", str(args.project), "--child"],
                             env=env, check=True, capture_output=True, text=True)  # fmt: skip
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), flush=True)
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs")
    keys = ["threads", "input_s", "forward_s", "step_s", "steps_per_epoch_s", "epoch_s",
            "validation_s", "step_gflops", "matmul_gflops"]  # fmt: skip
    print_table(rows, keys)


if __name__ == "__main__":
    main()
