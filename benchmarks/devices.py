"""One benchmark for every device of a machine: the FCN's training steps and a whole tile's
segmentation, so a CPU laptop, a GPU box and the machines of a Dask cluster give figures that
compare.

For each device TensorFlow sees (the CPU, then every GPU), in a child process of its own that
sees only that device (``CUDA_VISIBLE_DEVICES``):

- ``ceiling``: a 4096 x 4096 float32 matrix multiply on the device, repeated (GFLOP/s);
- ``segment``: a whole tile (``--size``, default a true Sentinel-2 tile of 10,980 px) through
  the scan's and segment's default path: blocks of patches with the receptive field's halo,
  batch normalisation folded (``benchmarks/segment_tile.py``'s ``batched`` step, the same tile
  in Earth Engine's image-export format);
- ``train``: the default FCN of ``conf/base`` as ``train`` fits it (its members' view and loss,
  target disk, ignore ring and weights, batch and crop size, Adam) taking ``--train-steps``
  steps of ``model.fit`` on crops held in memory, after a warm-up epoch
  of as many steps: the step's arithmetic, without the input pipeline (``train_fcn_time.py``
  measures that on a project's shards); on a GPU again in ``mixed_float16``
  (``train.mixed_precision``).

FLOPs are the convolutions' multiply-adds (``forward_flops_per_pixel``); a training step counts
three forward passes, the usual estimate. The weights are untrained (speed does not depend on
them). Prints one JSON line per device and a Markdown table; ``--out`` keeps the JSON.

Run: ``.venv/bin/python benchmarks/devices.py [--size 10980] [--train-steps 100] [--out FILE]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from markdown_table import print_table  # benchmarks/, beside this script
from segment_tile import BANDS, ROOT, run_step, write_tile

#: ``mixed_float16`` pays only on GPUs' tensor cores; on a CPU it is refused (training.py).
GPU_PRECISIONS = ("float32", "mixed_float16")


def visible_devices() -> dict:
    """This machine (:func:`.describe_machine`) and its devices: ``CPU`` and ``GPU:<index>``
    with each GPU's name (run in a child)."""
    import tensorflow as tf

    from dam_detection.machine import describe_machine

    gpus = tf.config.list_physical_devices("GPU")
    names = [tf.config.experimental.get_device_details(gpu).get("device_name", "?") for gpu in gpus]
    return {
        "machine": describe_machine(),
        "devices": ["CPU"] + [f"GPU:{i}" for i in range(len(gpus))],
        "gpu_names": names,
    }


def train_steps(steps: int, precision: str) -> dict:
    """``steps`` timed training steps of the default FCN in ``precision``, after a warm-up."""
    import keras
    import numpy as np
    import tensorflow as tf
    import yaml

    from dam_detection.model_layers import member_crossentropy
    from dam_detection.pipelines.train.augmentation import point_maps
    from dam_detection.pipelines.train.input_pipeline import disk_weighted, fcn_target_settings
    from dam_detection.pipelines.train.models import (
        fcn_from_settings,
        forward_flops_per_pixel,
        member_heatmaps,
    )

    keras.mixed_precision.set_global_policy(precision)
    keras.utils.set_random_seed(0)
    fcn = yaml.safe_load((ROOT / "conf/base/parameters_train.yml").read_text())["train"]["fcn"]
    batch, crop = int(fcn["batch_size"]), int(fcn["crop_size"])
    model = fcn_from_settings(BANDS, fcn)
    fitted = member_heatmaps(model)  # what train fits, with its loss (jobs.train_fcn_job)
    fitted.compile(optimizer=keras.optimizers.Adam(float(fcn["learning_rate"])),
                   loss=member_crossentropy)  # fmt: skip
    images = np.random.default_rng(0).normal(size=(batch, crop, crop, len(BANDS)))
    # A dam at every crop's centre, with train's target disk, ignore ring and weights.
    radii = fcn_target_settings(fcn)
    target, weight = point_maps(tf.zeros([batch, 2], tf.int32), crop, tf.ones([batch]),
                                radii["target_radius"], radii["ignore_radius"])  # fmt: skip
    weight = disk_weighted(target, weight, radii)

    class EpochTimes(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.seconds: list[float] = []

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            self.seconds.append(time.perf_counter() - self.started)

    data = tf.data.Dataset.from_tensors((images.astype(np.float32), target, weight)).repeat()
    timer = EpochTimes()
    # The first epoch traces and warms the kernels up; the second is the measurement.
    fitted.fit(data, steps_per_epoch=steps, epochs=2, verbose=0, shuffle=False, callbacks=[timer])
    seconds = timer.seconds[-1]
    pixels = batch * crop * crop * steps
    return {
        "precision": precision,
        "steps": steps,
        "step_ms": round(1000 * seconds / steps, 1),
        "crops_per_s": round(batch * steps / seconds, 1),
        "gflops": round(3 * forward_flops_per_pixel(model) * pixels / seconds / 1e9, 1),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def measure_device(device: str, folder: Path, steps: int) -> dict:
    """Every figure of one device, in this process (a child that sees only that device)."""
    result: dict = {"device": device, "ceiling": run_step("ceiling", folder, False, 4)}
    result["segment"] = run_step("batched", folder / "scenes", False, 4)
    precisions = GPU_PRECISIONS if device.startswith("GPU") else ("float32",)
    result["train"] = [train_steps(steps, precision) for precision in precisions]
    return result


def _child(device: str | None, *args: str) -> dict:
    """Run this script with ``args`` in a process that sees only ``device`` (None: all)."""
    env = dict(os.environ)
    if device is not None:
        env["CUDA_VISIBLE_DEVICES"] = "-1" if device == "CPU" else device.split(":")[1]
    done = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True,
                          check=True, env=env)  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def table_rows(results: list[dict]) -> list[dict]:
    """One row per device and training precision."""
    rows = []
    for result in results:
        segment = result["segment"]
        for train in result["train"]:
            rows.append({
                "device": result["device"],
                "matmul GFLOP/s": result["ceiling"]["gflops"],
                "tile s (GFLOP/s)": f"{segment['seconds']} ({segment['gflops']})",
                "training": train["precision"],
                "step ms (GFLOP/s)": f"{train['step_ms']} ({train['gflops']})",
                "crops/s": train["crops_per_s"],
            })  # fmt: skip
    return rows


def main() -> None:
    """Write the tile once, measure every device in its own process, print and keep the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=10_980, help="tile side, pixels")
    parser.add_argument("--patch", type=int, default=366, help="exported patch side, pixels")
    parser.add_argument("--train-steps", type=int, default=100)
    parser.add_argument("--out", type=Path, help="write the figures here as JSON")
    parser.add_argument("--list", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--device", help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.list:
        print(json.dumps(visible_devices()))
        return
    if args.device:
        print(json.dumps(measure_device(args.device, args.folder, args.train_steps)))
        return
    if args.size % args.patch:
        parser.error(f"--size {args.size} is not a whole number of --patch {args.patch} patches")
    (ROOT / "data").mkdir(exist_ok=True)
    results = []
    # Next to the project's data (a whole tile is ~4.4 GB of records), not a RAM-backed /tmp.
    with tempfile.TemporaryDirectory(dir=ROOT / "data", prefix=".bench-devices-") as folder:
        write_tile(Path(folder) / "scenes" / "tile", args.size, args.patch)
        found = _child(None, "--list")
        for device in found["devices"]:
            result = _child(device, "--device", device, "--folder", folder,
                            "--train-steps", str(args.train_steps))  # fmt: skip
            print(json.dumps(result), flush=True)
            results.append(result)
    summary = {
        "machine": found["machine"],
        "gpu_names": found["gpu_names"],
        "date": str(date.today()),
        "tile_px": args.size,
        "devices": results,
    }
    if args.out:
        args.out.write_text(json.dumps(summary, indent=1) + "\n")
    rows = table_rows(results)
    print_table(rows, list(rows[0]))


if __name__ == "__main__":
    main()
