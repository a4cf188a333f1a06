"""Benchmarks of the ``segment`` pipeline: FCN vs sliding classifier speed, and peak memory.

Usage (from the repository root)::

    .venv/bin/python benchmarks/segment.py speed            # FCN vs classifier, one process
    .venv/bin/python benchmarks/segment.py memory           # 2048^2 vs 4096^2 scene, peak RSS
    .venv/bin/python benchmarks/segment.py tile             # a full 10980^2 Sentinel-2 tile

Models are the real architectures of ``pipelines/train/models.py`` (``dilated_fcn`` and the
configured classifier), randomly initialised unless ``--trained`` loads data/06_models/*.keras:
speed and memory do not depend on the weights. Scenes are synthetic, written record by record
with the project's codec (never held whole), in Earth Engine's image-export format.
Every memory measurement runs in a fresh child process, so the numbers are that process's peak.
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
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
BANDS = ("B2", "B3", "B4", "NDWI", "AVE")
PATCH, KERNEL = 256, 128  # the default export: 256 px patches, kernelSize 128


def _models(trained: bool, crop: int = 64):
    from dam_detection.pipelines.train.models import build_classifier, dilated_fcn

    if trained:
        import keras

        return (keras.models.load_model(ROOT / "data/06_models/fcn.keras"),
                keras.models.load_model(ROOT / "data/06_models/classifier.keras"))  # fmt: skip
    return dilated_fcn(BANDS), build_classifier("residual_cnn", BANDS, crop)


def _mixer(size_px: int):
    from dam_detection.mixer import Mixer

    per_row = size_px // PATCH
    return Mixer("EPSG:32614", (10.0, 0.0, 500000.0, 0.0, -10.0, 4480000.0), PATCH, PATCH,
                 per_row, per_row * per_row)  # fmt: skip


def _patch(index: int) -> np.ndarray:
    """A synthetic buffered patch: smooth reflectance-like values plus noise."""
    rng = np.random.default_rng(index)
    size = PATCH + KERNEL
    base = rng.random((1, 1, len(BANDS)), dtype=np.float32) * 0.2
    return base + rng.normal(0, 0.02, (size, size, len(BANDS))).astype(np.float32)


def write_scene(folder: Path, size_px: int) -> None:
    """Write a ``size_px`` square scene export, one record at a time (uncompressed files)."""
    from dam_detection.tfrecord_codec import encode_example, frame_record

    mixer = _mixer(size_px)
    folder.mkdir(parents=True, exist_ok=True)
    per_file = 200
    for first in range(0, mixer.total_patches, per_file):
        path = folder / f"scene-{first // per_file:05d}.tfrecord"
        with open(path.with_suffix(".tmp"), "wb") as handle:
            for index in range(first, min(first + per_file, mixer.total_patches)):
                patch = _patch(index)
                handle.write(frame_record(encode_example(
                    {band: patch[..., i] for i, band in enumerate(BANDS)})))  # fmt: skip
        os.replace(path.with_suffix(".tmp"), path)
    (folder / "scene-mixer.json").write_text(json.dumps(mixer.to_json()))


def segment_folder(root: Path, out: Path, trained: bool) -> dict:
    """Segment every scene under ``root`` as the pipeline does and write its outputs."""
    from dam_detection.datasets.geotiff import GeoTIFFDataset
    from dam_detection.datasets.image_export_dataset import ImageExportDataset
    from dam_detection.datasets.scene_predictions import ScenePredictionsDataset
    from dam_detection.pipelines.segment import nodes

    fcn, _ = _models(trained)
    stats = {"bands": {b: {"mean": 0.1, "std": 0.05} for b in BANDS}}
    params = {"batch_size": 4, "preview_max_px": 1024, "detection": {"threshold": 0.5,
              "min_distance_px": 10}}  # fmt: skip
    scenes = ImageExportDataset(filepath=str(root)).load()
    start = time.perf_counter()
    maps = nodes.predict_heatmaps(scenes, fcn, stats, BANDS, params)
    predicted = time.perf_counter()
    detections = nodes.detect_dams(maps, params)
    for name, raster in nodes.heatmap_rasters(maps).items():
        GeoTIFFDataset(filepath=str(out / f"{name}.tif")).save(raster())
    ScenePredictionsDataset(path=str(out / "predictions")).save(nodes.prediction_exports(maps, {}))
    for name, figure in nodes.overlay_figures(maps, detections, {}).items():
        figure().savefig(out / f"{name}.png", dpi=80)
    name = next(iter(maps))
    return {
        "pixels": int(maps[name].probability.size),
        "predict_s": round(predicted - start, 1),
        "total_s": round(time.perf_counter() - start, 1),
        "detections": int(sum(len(t) for t in detections.values())),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def _child(*args: str) -> dict:
    result = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True,
                            check=True)  # fmt: skip
    return json.loads(result.stdout.strip().splitlines()[-1])


def speed(size_px: int, trained: bool, stride: int, rows_at_stride_1: int) -> dict:
    """FCN over a whole scene vs the classifier: stride 1 on a slice, ``stride`` on the scene."""
    import keras

    from dam_detection.pipelines.segment.predict import batched, predict_scene
    from dam_detection.pipelines.segment.sliding import slide_classifier

    fcn, classifier = _models(trained)
    crop = classifier.input_shape[1]
    mixer = _mixer(size_px)
    stats = {b: {"mean": 0.1, "std": 0.05} for b in BANDS}
    kernel = (KERNEL, KERNEL)

    def patches():
        return batched((_patch(i) for i in range(mixer.total_patches)), 4)

    fcn.predict_on_batch(np.zeros((1, 384, 384, len(BANDS)), np.float32))  # build the graph
    classifier.predict_on_batch(np.zeros((1, crop, crop, len(BANDS)), np.float32))
    fcn_map = predict_scene(fcn.predict_on_batch, patches(), mixer, kernel, stats, BANDS)
    dense = slide_classifier(classifier.predict_on_batch, patches(), mixer, kernel, stats, BANDS,
                             crop_size=crop, stride=1, batch_size=128,
                             max_rows=rows_at_stride_1)  # fmt: skip
    coarse = slide_classifier(classifier.predict_on_batch, patches(), mixer, kernel, stats, BANDS,
                              crop_size=crop, stride=stride, batch_size=128)  # fmt: skip
    fcn_us = fcn_map.seconds / fcn_map.probability.size * 1e6
    dense_us = dense.seconds / dense.probability.size * 1e6
    return {
        "scene_px": size_px, "fcn": fcn.name, "classifier": classifier.name, "crop": crop,
        "keras": keras.__version__,
        "fcn_s": round(fcn_map.seconds, 2), "fcn_us_per_px": round(fcn_us, 3),
        "classifier_stride1_cells": int(dense.probability.size),
        "classifier_stride1_s": round(dense.seconds, 2),
        "classifier_us_per_px_stride1": round(dense_us, 1),
        "classifier_stride1_scene_s_estimate": round(dense_us * size_px**2 / 1e6, 1),
        f"classifier_stride{stride}_s": round(coarse.seconds, 2),
        "speedup_same_resolution": round(dense_us / fcn_us, 1),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("mode", choices=["speed", "memory", "tile", "_write", "_segment"])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--stride", type=int, default=32)
    parser.add_argument("--rows", type=int, default=4, help="grid rows timed at stride 1")
    parser.add_argument("--trained", action="store_true")
    parser.add_argument("--folder", type=Path)
    args = parser.parse_args()
    if args.mode == "_write":
        write_scene(args.folder / "scenes" / f"s{args.size}", args.size)
        print(json.dumps({"written": args.size}))
    elif args.mode == "_segment":
        (args.folder / "out").mkdir(exist_ok=True)
        print(json.dumps(segment_folder(args.folder / "scenes", args.folder / "out", args.trained)))
    elif args.mode == "speed":
        print(json.dumps(speed(args.size, args.trained, args.stride, args.rows), indent=1))
    else:
        sizes = [2048, 4096] if args.mode == "memory" else [10980]
        results = {}
        for size in sizes:
            # Next to the project's data (a large scene needs ~5 GB of disk), not in a RAM /tmp.
            (ROOT / "data").mkdir(exist_ok=True)
            with tempfile.TemporaryDirectory(dir=ROOT / "data", prefix=".bench-") as folder:
                start = time.perf_counter()
                _child("_write", "--size", str(size), "--folder", folder)
                written = time.perf_counter() - start
                extra = ["--trained"] if args.trained else []
                results[size] = _child("_segment", "--folder", folder, *extra)
                results[size]["write_scene_s"] = round(written, 1)
                print(json.dumps({size: results[size]}), flush=True)
        if args.mode == "memory":
            small, large = results[2048]["peak_rss_mib"], results[4096]["peak_rss_mib"]
            print(json.dumps({"peak_rss_increase_for_4x_area": round(large / small - 1, 3)}))


if __name__ == "__main__":
    main()
