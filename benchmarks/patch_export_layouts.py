"""Benchmark: where the two cores go when the simulated source exports patch files.

Two layouts of the same export through the real ``TFRecordDataset`` (gzip level 1), measured
alternately in one run so both see the same machine load:

- ``pool``: one file at a time (dataset ``workers: 1``); the source renders each file's records
  on its pool of 2 processes, and the parent serializes, compresses and writes them.
- ``files``: two files at a time (dataset ``workers: 2``); each worker renders, compresses and
  writes its own file (source ``workers: 1``).

Usage::

    .venv/bin/python benchmarks/patch_export_layouts.py --points 96 --repeats 2
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import geopandas as gpd
from render_simulated import _points  # the same kinds and places as the render benchmark

from dam_detection.datasets.tfrecord_dataset import TFRecordDataset
from dam_detection.image_sources.base import CompositeWindow, PatchRequest
from dam_detection.image_sources.simulated import SimulatedEarth
from dam_detection.image_sources.simulated.patches import close_pools

LAYOUTS = {"pool": {"source_workers": 2, "dataset_workers": 1},
           "files": {"source_workers": 1, "dataset_workers": 2}}  # fmt: skip


def _export(layout: str, points: gpd.GeoDataFrame, per_file: int, folder: Path) -> float:
    settings = LAYOUTS[layout]
    source = SimulatedEarth(seed=42, workers=settings["source_workers"])
    request = PatchRequest(
        composite=CompositeWindow("2019-04-01", "2019-10-01", 20.0), points_per_file=per_file
    )
    files = source.patch_files(points, request)
    dataset = TFRecordDataset(
        filepath=str(folder),
        save_args={"compresslevel": 1, "workers": settings["dataset_workers"]},
    )
    start = time.perf_counter()
    dataset.save(files)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--points", type=int, default=96)
    parser.add_argument("--per-file", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    points = _points(args.points)
    print(
        f"{platform.machine()}, {os.cpu_count()} cpus, {args.points} points of 257x257x5 in "
        f"files of {args.per_file}, gzip level 1"
    )
    _export("pool", points.iloc[:4], 2, Path(tempfile.mkdtemp()))  # warm the source's pool
    timings: dict[str, list[float]] = {name: [] for name in LAYOUTS}
    for _ in range(args.repeats):
        for name in LAYOUTS:
            folder = Path(tempfile.mkdtemp())
            timings[name].append(_export(name, points, args.per_file, folder))
            shutil.rmtree(folder)
    close_pools()
    for name, values in timings.items():
        best = min(values)
        print(f"{name:6s}: best {best:.1f} s, {args.points / best:.1f} patches/s  {values}")
    print(f"files / pool speed: {min(timings['pool']) / min(timings['files']):.2f}x")


if __name__ == "__main__":
    main()
