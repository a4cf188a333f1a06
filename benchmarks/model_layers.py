"""The models' own layers against Keras' stock layers: a training step and a segmented block.

``DilatedConv2D`` and ``FusedBatchNormalization`` (``src/dam_detection/model_layers.py``) compute
what Keras' ``Conv2D`` and ``BatchNormalization`` compute, on faster TensorFlow kernels. This
script builds the default FCN and classifier (settings read from ``conf/base``, the one source of
truth) twice in one process, once with the project's layers and once with Keras' (the code path
before them), and times, interleaved round by round so the machine's noise falls on both alike:

- ``fcn_step_ms`` / ``classifier_step_ms``: one training step (forward, backward, Adam) on a
  batch of the default crop and batch size, synthetic data, op determinism on as training has it;
- ``block_s``: the batch-norm-folded FCN (what scans and segmentation run) on one 1,174² block,
  one image, as a scan worker computes it.

Each ``--isa`` value runs in its own process with ``ONEDNN_MAX_CPU_ISA`` set (oneDNN fixes its
instruction set when it starts): ``ALL`` is what the CPU has, ``AVX2`` what most laptops have;
``off`` runs with oneDNN off (``TF_ENABLE_ONEDNN_OPTS=0``: TensorFlow's Eigen kernels, its default
on CPUs without AVX-512-class features, where ``DilatedConv2D`` takes Keras' path).

Usage::

    .venv/bin/python benchmarks/model_layers.py [--isa ALL,AVX2,off] [--rounds 5]
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

import yaml

ROOT = Path(__file__).resolve().parents[1]
BANDS = ("B2", "B3", "B4", "NDWI", "AVE")
BLOCK_PX = 1174  # a scan block: 4 x 4 patches of 256 px and the FCN's halo


def _defaults() -> dict:
    parameters = yaml.safe_load((ROOT / "conf/base/parameters_train.yml").read_text())
    return parameters["train"]


def _builders(stock: bool) -> dict:
    """The default FCN and classifier, with Keras' stock layers where ``stock``."""
    from keras import layers

    from dam_detection.pipelines.train import models

    train = _defaults()
    fcn, classifier = train["fcn"], train["classifier"]
    swap = {"DilatedConv2D": layers.Conv2D, "FusedBatchNormalization": layers.BatchNormalization}

    def build(kind: str):  # noqa: ANN202
        saved = {name: getattr(models, name) for name in swap}
        if stock:  # the layers before this change; restored at once
            for name, layer in swap.items():
                setattr(models, name, layer)
        try:
            if kind == "fcn":
                return models.fcn_from_settings(BANDS, fcn)
            return models.build_classifier(
                classifier["architecture"], BANDS, classifier["crop_size"], classifier["width"]
            )
        finally:
            for name, layer in saved.items():
                setattr(models, name, layer)

    return {"fcn": build("fcn"), "classifier": build("classifier")}


def measure(rounds: int) -> dict:
    """This process's figures: per layer set, the median over ``rounds`` interleaved rounds."""
    import keras
    import numpy as np
    import tensorflow as tf

    from dam_detection.pipelines.segment.inference import fold_batch_norm

    keras.utils.set_random_seed(0)
    tf.config.experimental.enable_op_determinism()
    train = _defaults()
    rng = np.random.default_rng(0)

    def batch(section: dict, per_pixel: bool) -> tuple:
        size, count = section["crop_size"], section["batch_size"]
        images = rng.normal(size=(count, size, size, len(BANDS))).astype(np.float32)
        shape = (count, size, size, 1) if per_pixel else (count, 1)
        return images, (rng.uniform(size=shape) > 0.9).astype(np.float32)

    batches = {"fcn": batch(train["fcn"], True), "classifier": batch(train["classifier"], False)}
    block = rng.normal(size=(1, BLOCK_PX, BLOCK_PX, len(BANDS))).astype(np.float32)
    sets = {}
    for name, stock in (("keras", True), ("project", False)):
        models = _builders(stock)
        for model in models.values():
            model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy")
        folded = fold_batch_norm(models["fcn"])
        predict = tf.function(lambda x, m=folded: m(x, training=False))
        sets[name] = (models, predict)
    times: dict = {name: {"fcn": [], "classifier": [], "block": []} for name in sets}
    for round_ in range(rounds + 1):  # the first round warms up (graph tracing) and is dropped
        for name, (models, predict) in sets.items():
            for kind, model in models.items():
                images, target = batches[kind]
                start = time.perf_counter()
                for _ in range(10):
                    model.train_on_batch(images, target)
                if round_:
                    times[name][kind].append((time.perf_counter() - start) / 10)
            start = time.perf_counter()
            predict(block).numpy()
            if round_:
                times[name]["block"].append(time.perf_counter() - start)
    onednn = os.environ.get("TF_ENABLE_ONEDNN_OPTS") != "0"
    result = {"isa": os.environ.get("ONEDNN_MAX_CPU_ISA", "ALL") if onednn else "off"}
    for name, kinds in times.items():
        result[f"{name}_fcn_step_ms"] = round(statistics.median(kinds["fcn"]) * 1e3, 1)
        result[f"{name}_classifier_step_ms"] = round(
            statistics.median(kinds["classifier"]) * 1e3, 1
        )
        result[f"{name}_block_s"] = round(statistics.median(kinds["block"]), 3)
    for key in ("fcn_step_ms", "classifier_step_ms", "block_s"):
        result[f"speedup_{key.rsplit('_', 1)[0]}"] = round(
            result[f"keras_{key}"] / result[f"project_{key}"], 2
        )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--isa", default="ALL,AVX2,off", help="ONEDNN_MAX_CPU_ISA values, one process each"
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.rounds)))
        return
    rows = []
    for isa in args.isa.split(","):
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT / "src")}
        env.pop("ONEDNN_MAX_CPU_ISA", None)
        env["TF_ENABLE_ONEDNN_OPTS"] = "0" if isa == "off" else "1"
        if isa not in ("ALL", "off"):
            env["ONEDNN_MAX_CPU_ISA"] = isa
        command = [sys.executable, __file__, "--child", "--rounds", str(args.rounds)]
        out = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), flush=True)
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs")
    print("| ISA | FCN step (Keras -> ours) | classifier step | folded FCN on a 1,174² block |")
    print("|---|---|---|---|")
    for row in rows:
        cells = [row["isa"]]
        for key, unit in (("fcn_step_ms", " ms"), ("classifier_step_ms", " ms"), ("block_s", " s")):
            speedup = row[f"speedup_{key.rsplit('_', 1)[0]}"]
            cells.append(f"{row[f'keras_{key}']} -> {row[f'project_{key}']}{unit} ({speedup}x)")
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
