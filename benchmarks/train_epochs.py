"""The FCN's training as the default run trains it, with tf.data's autotuning on and off.

Runs ``kedro run --pipeline train --to-nodes train.train_fcn`` in a project that ran the default
pipelines up to ``shard_tfrecords`` (``--project``), ``--epochs`` epochs, once per
``train.input.autotune`` value and round, alternating, each in its own process, and reads the
training's own timing from its Sacred run (``fcn_report.json``): time in steps and in
validation, cores busy during steps, and the median and slowest epoch after the first (a stalled
epoch shows as a slowest far above the median).

Usage::

    .venv/bin/python benchmarks/train_epochs.py --project <default-run clone> [--epochs 15]
        [--rounds 1]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import time
from pathlib import Path

from markdown_table import print_table  # benchmarks/, beside this script

ROOT = Path(__file__).resolve().parents[1]
KEYS = ("train_s", "validation_s", "train_cores_busy", "epoch_train_s_median",
        "epoch_train_s_max")  # fmt: skip


def _newest_report(project: Path) -> dict:
    runs = [path for path in (project / "data/06_models/sacred").glob("*") if path.name.isdigit()]
    newest = max(runs, key=lambda path: int(path.name))
    return json.loads((newest / "fcn_report.json").read_text())


def train(project: Path, epochs: int, autotune: bool) -> dict:
    """One FCN training in its own ``kedro run``; its timing and wall time."""
    params = f"train.fcn.epochs={epochs},train.input.autotune={str(autotune).lower()}"
    env = {**os.environ, "DO_NOT_TRACK": "1", "TF_CPP_MIN_LOG_LEVEL": "2",
           "PYTHONPATH": str(ROOT / "src")}  # fmt: skip
    start = time.perf_counter()
    subprocess.run(
        [str(ROOT / ".venv/bin/kedro"), "run", "--pipeline", "train", "--to-nodes",
         "train.train_fcn", "--params", params],
        cwd=project, env=env, check=True, capture_output=True, text=True,
    )  # fmt: skip
    wall = time.perf_counter() - start
    timing = _newest_report(project)["timing"]
    return {"autotune": autotune, "node_wall_s": round(wall, 1), **{k: timing[k] for k in KEYS}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    rows = []
    for _ in range(args.rounds):
        for autotune in (True, False):
            rows.append(train(args.project.resolve(), args.epochs, autotune))
            print(json.dumps(rows[-1]), flush=True)
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA", "all")
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs, "
          f"oneDNN ISA {isa}, {args.epochs} epochs")  # fmt: skip
    print_table(rows, ["autotune", "node_wall_s", *KEYS])


if __name__ == "__main__":
    main()
