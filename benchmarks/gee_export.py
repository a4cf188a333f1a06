"""Benchmark: the write and read paths of gee_export's datasets (not the rendering).

Measures, on synthetic Sentinel-2-like records (smooth fields plus noise, quantised to 1e-4 like
Earth Engine's reflectances, so gzip sees realistic entropy):

1. ``TFRecordDataset.save`` of default-size patch records (5 bands, radius 128 = 257 x 257)
   uncompressed and at gzip levels 1 and 6, with 1 and 2 worker processes: seconds (making the
   records included, the same in every row), MB/s of raw records, bytes per record.
2. ``ImageExport.iter_patches`` over one default scene (2048 x 2048 px, 256 + 128 patches: 64
   patches of 384 x 384 x 5): patches per second.

Run: ``.venv/bin/python benchmarks/gee_export.py [--records 200]``; it prints Markdown table rows
for ``benchmarks/results_gee_export.md``.
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import tempfile
import time
from datetime import date

import numpy as np

from dam_detection.datasets import ImageExportDataset, TFRecordDataset
from dam_detection.image_sources.base import SceneExport
from dam_detection.mixer import Mixer
from dam_detection.tfrecord_codec import encode_example

BANDS = ("B2", "B3", "B4", "NDWI", "AVE")


def synthetic_band(rng: np.random.Generator, height: int, width: int, band: int) -> np.ndarray:
    """A smooth field plus sensor-like noise, quantised as Earth Engine reflectances are."""
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
    phase = rng.uniform(0, 6.28, 2)
    field = 0.08 + 0.05 * np.sin(rows / 23 + phase[0]) * np.cos(cols / 31 + phase[1])
    field += rng.normal(0, 0.004, (height, width))
    if band == 4:  # elevation in metres
        return np.round(1200 + 8000 * field).astype(np.float32)
    return np.round(field, 4).astype(np.float32)


def patch_records(seed: int, count: int, size: int) -> list[bytes]:
    """``count`` patch records (top-level, so worker processes can import it)."""
    rng = np.random.default_rng(seed)
    return [
        encode_example(
            {b: synthetic_band(rng, size, size, n) for n, b in enumerate(BANDS)}
            | {"label": 1.0, "point_index": float(i)}
        )
        for i in range(count)
    ]


def time_patch_save(
    records: int, per_file: int, level: int | None, workers: int
) -> tuple[float, int]:
    chunks = {
        f"patches-{n:05d}": functools.partial(patch_records, n, per_file, 257)
        for n in range(records // per_file)
    }
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        TFRecordDataset(
            filepath=folder,
            save_args={
                "compression": None if level is None else "GZIP",
                "compresslevel": level or 6,
                "workers": workers,
            },
        ).save(chunks)
        seconds = time.perf_counter() - start
        size = sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder))
    return seconds, size


def time_scene_read() -> float:
    mixer = Mixer("EPSG:4326", (9e-5, 0, -100, 0, -9e-5, 40), 256, 256, 8, 64)
    files = {
        f"scene-{n:05d}.tfrecord.gz": functools.partial(patch_records, n, 16, 384) for n in range(4)
    }
    with tempfile.TemporaryDirectory() as folder:
        ImageExportDataset(filepath=folder).save({"s": SceneExport(mixer.to_json(), files)})
        scene = ImageExportDataset(filepath=folder).load()["s"]
        start = time.perf_counter()
        count = sum(len(batch) for batch in scene.iter_patches(BANDS, batch_size=8))
        seconds = time.perf_counter() - start
    assert count == 64
    return count / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200)
    parser.add_argument("--per-file", type=int, default=50)
    args = parser.parse_args()
    raw_mb = args.records * len(BANDS) * 257 * 257 * 4 / 1e6
    where = f"{platform.machine()}, {os.cpu_count()} cores"
    print("| date | machine | records | gzip level | workers | seconds | raw MB/s | bytes/record |")
    for level, workers in ((None, 1), (1, 1), (6, 1), (1, 2), (6, 2)):
        seconds, size = time_patch_save(args.records, args.per_file, level, workers)
        print(
            f"| {date.today()} | {where} | {args.records} | {level or 'none'} | {workers} | "
            f"{seconds:.1f} | {raw_mb / seconds:.0f} | {size // args.records} |"
        )
    print(
        f"\nscene read (64 patches of 384x384x5, batches of 8): {time_scene_read():.1f} patches/s"
    )


if __name__ == "__main__":
    main()
