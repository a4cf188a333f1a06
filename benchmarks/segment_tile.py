"""Benchmark: a true 10,980 x 10,980 Sentinel-2 tile through the FCN, today's per-patch path and
the block path side by side, with the machine's own arithmetic ceiling measured in the same run.

The tile is exported whole as 30 x 30 patches of 366 px with the scenes' ``kernelSize``
(``conf/base``: 160; 366 x 30 = 10,980: no border dropped), written to disk in Earth Engine's
image-export format (synthetic values that are a function of the pixel's place, so each patch's
buffer holds its neighbours' pixels as in a real export; uncompressed). Each figure runs in its
own child process, one after the other, so each peak RSS is that step's own:

- ``decode``: reading and decoding every record, nothing else;
- ``per_patch``: today's code path, each buffered patch predicted alone by the trained model;
- ``blocks``: the new path, 4 x 4 patches per prediction with the receptive field's halo, by
  the model with its batch normalisation folded into the convolutions;
- ``batched``: the block path with ``segment.blocks_per_batch`` equal blocks of a strip
  predicted as one batch (``conf/base``; ``blocks`` predicts them one at a time);
- ``ceiling``: a 4096 x 4096 float32 matrix multiply in TensorFlow, repeated (GFLOP/s).

FLOPs are counted from the model's convolutions (2 x kh x kw x Cin x Cout per pixel each runs
on, the multiply-adds that dominate; ``forward_flops_per_pixel``). The model is the default FCN
of ``conf/base`` (its trained weights from ``data/06_models/fcn.keras`` with ``--trained``;
speed does not depend on them).

Run: ``.venv/bin/python benchmarks/segment_tile.py [--size 10980] [--patch 366] [--trained]``;
``--steps blocks --size 2928`` and ``--size 5856`` give the block path's peak memory for a
scene and one of four times its area.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
BANDS = ("B2", "B3", "B4", "NDWI", "AVE")


def scene_kernel() -> int:
    """The overlap scenes are exported with (``gee_export.scene_export.kernel_size``): at least
    the default FCN's receptive field, as the per-patch path needs."""
    import yaml

    settings = yaml.safe_load((ROOT / "conf/base/parameters_gee_export.yml").read_text())
    return int(settings["gee_export"]["scene_export"]["kernel_size"][0])


KERNEL = scene_kernel()
STATS = {band: {"mean": 0.1, "std": 0.05} for band in BANDS}


def default_fcn(trained: bool):
    """The default FCN: trained weights, or the architecture ``conf/base`` configures."""
    import keras
    import yaml

    from dam_detection import model_layers  # noqa: F401  (registers the models' own layers)
    from dam_detection.pipelines.train.models import fcn_from_settings, receptive_field

    if trained:
        model = keras.models.load_model(ROOT / "data/06_models/fcn.keras")
    else:
        keras.utils.set_random_seed(0)  # every step's process builds the same weights
        settings = yaml.safe_load((ROOT / "conf/base/parameters_train.yml").read_text())
        fcn = settings["train"]["fcn"]
        model = fcn_from_settings(BANDS, fcn)
    return model, receptive_field(model)


def mixer_for(size: int, patch: int):
    from dam_detection.mixer import Mixer

    per_row = size // patch
    return Mixer("EPSG:32614", (10.0, 0.0, 500000.0, 0.0, -10.0, 4480000.0), patch, patch,
                 per_row, per_row * per_row)  # fmt: skip


def mosaic_window(top: int, left: int, size: int) -> np.ndarray:
    """Pixels ``[top, top + size) x [left, left + size)`` of one synthetic scene, all bands.

    A deterministic function of the pixel's place (smooth fields plus hashed noise), so a
    patch's buffer holds exactly its neighbours' pixels, as in a real export.
    """
    rows, cols = np.mgrid[top : top + size, left : left + size].astype(np.int64)
    bands = []
    for band in range(len(BANDS)):
        field = 0.12 + 0.06 * np.sin(rows / 97.0 + band) * np.cos(cols / 131.0 - band)
        hashed = (rows * 73856093) ^ (cols * 19349663) ^ (band * 83492791)
        bands.append(field + (hashed % 1000) / 1000.0 * 0.04)
    return np.stack(bands, axis=-1).astype(np.float32)


def write_tile(folder: Path, size: int, patch: int) -> None:
    """The scene export, record by record (its buffer past the scene's edge is data too)."""
    from dam_detection.tfrecord_codec import encode_example, frame_record

    mixer = mixer_for(size, patch)
    folder.mkdir(parents=True, exist_ok=True)
    side = patch + KERNEL
    per_file = 100
    for first in range(0, mixer.total_patches, per_file):
        path = folder / f"scene-{first // per_file:05d}.tfrecord"
        with open(path.with_suffix(".tmp"), "wb") as handle:
            for index in range(first, min(first + per_file, mixer.total_patches)):
                row, col = mixer.patch_origin(index)
                data = mosaic_window(row - KERNEL // 2, col - KERNEL // 2, side)
                record = encode_example({b: data[..., i] for i, b in enumerate(BANDS)})
                handle.write(frame_record(record))
        os.replace(path.with_suffix(".tmp"), path)
    (folder / "scene-mixer.json").write_text(json.dumps(mixer.to_json()))


def run_step(step: str, folder: Path, trained: bool, block: int) -> dict:
    """One measured step in this process (called in a child)."""
    from dam_detection.datasets.image_export_dataset import ImageExportDataset
    from dam_detection.pipelines.segment.blocks import (
        computed_area_ratio,
        halo_for,
        predict_scene_blocked,
    )
    from dam_detection.pipelines.segment.predict import keras_predictor, predict_scene

    result: dict = {}
    if step == "ceiling":
        import tensorflow as tf

        result["devices"] = [d.device_type for d in tf.config.list_physical_devices()]
        a = tf.random.normal((4096, 4096))
        tf.linalg.matmul(a, a)  # warm up
        start, repeats = time.perf_counter(), 8
        for _ in range(repeats):
            product = tf.linalg.matmul(a, a)
        float(product[0, 0])
        seconds = time.perf_counter() - start
        result["gflops"] = round(2 * 4096**3 * repeats / seconds / 1e9, 1)
    else:
        scene = ImageExportDataset(filepath=str(folder)).load()["tile"]
        mixer, kernel = scene.mixer, scene.kernel_size
        start = time.perf_counter()
        if step == "decode":
            count = sum(len(batch) for batch in scene.iter_patches(bands=BANDS, batch_size=4))
            result["patches"] = count
        else:
            model, field = default_fcn(trained)
            model.predict_on_batch(np.zeros((1, 64, 64, len(BANDS)), np.float32))
            start = time.perf_counter()
            batches = scene.iter_patches(bands=BANDS, batch_size=4)
            if step == "per_patch":
                score = predict_scene(keras_predictor(model), batches, mixer, kernel, STATS,
                                      BANDS)  # fmt: skip
                ratio = computed_area_ratio(mixer, kernel[0] // 2, 1, 1)
            else:
                import yaml

                from dam_detection.pipelines.segment.inference import fold_batch_norm

                segment = yaml.safe_load((ROOT / "conf/base/parameters_segment.yml").read_text())
                per_batch = segment["segment"]["blocks_per_batch"] if step == "batched" else 1
                result["blocks_per_batch"] = per_batch

                halo = halo_for(field)
                folding = time.perf_counter()
                folded = fold_batch_norm(model)
                result["fold_s"] = round(time.perf_counter() - folding, 2)  # once per run
                folded.predict_on_batch(np.zeros((1, 64, 64, len(BANDS)), np.float32))
                start = time.perf_counter()
                score = predict_scene_blocked(keras_predictor(folded), batches, mixer, kernel,
                                              STATS, BANDS, halo=halo, block_patches=block,
                                              blocks_per_batch=per_batch)  # fmt: skip
                ratio = computed_area_ratio(mixer, halo, block, block)
            np.save(folder.parent / f"{step}.npy", score.probability)
            from dam_detection.pipelines.train.models import forward_flops_per_pixel

            flops = forward_flops_per_pixel(model)
            result.update(
                computed_area=round(ratio, 3), receptive_field_px=field,
                flops_per_computed_px=flops, flops_per_output_px=round(flops * ratio),
                model=model.name,
            )  # fmt: skip
        seconds = time.perf_counter() - start
        result["seconds"] = round(seconds, 1)
        if step in ("per_patch", "blocks", "batched"):
            pixels = mixer.width_px * mixer.height_px
            result["gflops"] = round(result["flops_per_output_px"] * pixels / seconds / 1e9, 1)
    result["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return result


def _child(*args: str) -> dict:
    done = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True,
                          check=True)  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def _compare(results: dict, folder: Path, before: str, after: str, prefix: str) -> None:
    """Where both steps ran: the largest heatmap difference and the time of ``after`` over
    ``before``, as ``<prefix>max_abs_difference`` and ``<prefix>time_ratio``."""
    if not {before, after} <= set(results):
        return
    first, second = (np.load(folder / f"{step}.npy").astype(np.float32) for step in (before, after))
    results[f"{prefix}max_abs_difference"] = float(np.abs(second - first).max())
    ratio = results[after]["seconds"] / results[before]["seconds"]
    results[f"{prefix}time_ratio"] = round(ratio, 3)


def main() -> None:
    """Write the tile, run every step in its own process, print the results and a table row."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=10_980)
    parser.add_argument("--patch", type=int, default=366)
    parser.add_argument("--block", type=int, default=4)
    parser.add_argument("--trained", action="store_true")
    parser.add_argument("--steps", default="ceiling,decode,per_patch,blocks,batched",
                        help="comma-separated steps to run")  # fmt: skip
    parser.add_argument("--step")
    parser.add_argument("--folder", type=Path)
    args = parser.parse_args()
    if args.step:
        print(json.dumps(run_step(args.step, args.folder, args.trained, args.block)))
        return
    (ROOT / "data").mkdir(exist_ok=True)
    # Next to the project's data (the tile is ~4.4 GB of records), not in a RAM-backed /tmp.
    with tempfile.TemporaryDirectory(dir=ROOT / "data", prefix=".bench-tile-") as folder:
        scene = Path(folder) / "scenes" / "tile"
        start = time.perf_counter()
        write_tile(scene, args.size, args.patch)
        results: dict = {"write_s": round(time.perf_counter() - start, 1)}
        extra = ["--trained"] if args.trained else []
        for step in args.steps.split(","):
            results[step] = _child("--step", step, "--folder", str(scene.parent),
                                   "--block", str(args.block), *extra)  # fmt: skip
            print(json.dumps({step: results[step]}), flush=True)
        _compare(results, Path(folder), "per_patch", "blocks", prefix="")
        _compare(results, Path(folder), "blocks", "batched", prefix="batched_")
    results["machine"] = f"{platform.machine()} x{os.cpu_count()}"
    results["date"] = str(date.today())
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
