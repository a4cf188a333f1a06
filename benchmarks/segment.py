"""Benchmark of the ``segment`` pipeline: FCN vs sliding classifier speed.

Usage (from the repository root)::

    .venv/bin/python benchmarks/segment.py speed            # FCN vs classifier, one process

A full tile, today's per-patch path against the block path, and peak memory as scenes grow:
``benchmarks/segment_tile.py``.

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

        from dam_detection import model_layers  # noqa: F401  (registers the models' own layers)

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
    """Run the speed comparison and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("mode", choices=["speed"])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--stride", type=int, default=32)
    parser.add_argument("--rows", type=int, default=4, help="grid rows timed at stride 1")
    parser.add_argument("--trained", action="store_true")
    args = parser.parse_args()
    print(json.dumps(speed(args.size, args.trained, args.stride, args.rows), indent=1))


if __name__ == "__main__":
    main()
