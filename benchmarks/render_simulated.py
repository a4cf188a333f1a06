"""Benchmark: simulated patches rendered, serialized and gzip-written per second.

Runs the same points with 1 worker and with 2 workers in one process (so the ratio is
measured under the same machine load) and splits one worker's time into rendering,
serialization and gzip. Usage::

    .venv/bin/python benchmarks/render_simulated.py --points 60 --radius 128
"""

from __future__ import annotations

import argparse
import gzip
import io
import os
import platform
import time

import geopandas as gpd
import numpy as np
import shapely

from dam_detection.image_sources.base import CompositeWindow, PatchRequest
from dam_detection.image_sources.simulated import SimulatedEarth
from dam_detection.image_sources.simulated.patches import close_pools
from dam_detection.image_sources.simulated.render import PatchTask, render_patch
from dam_detection.tfrecord_codec import encode_example, frame_record


def _points(count: int) -> gpd.GeoDataFrame:
    kinds = np.array(["dam", "bridge", "water_edge", "random"])[np.arange(count) % 4]
    return gpd.GeoDataFrame(
        {"point_index": np.arange(count), "kind": kinds, "label": (kinds == "dam").astype(int)},
        geometry=[shapely.Point(-111 + 0.01 * i, 34 + 0.002 * i) for i in range(count)],
        crs="EPSG:4326",
    )


def _write(files, level: int) -> int:
    written = 0
    for chunk in files.values():
        with gzip.GzipFile(fileobj=io.BytesIO(), mode="wb", compresslevel=level) as out:
            for record in chunk():
                out.write(frame_record(record))
                written += 1
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--points", type=int, default=60)
    parser.add_argument("--radius", type=int, default=128)
    parser.add_argument("--gzip-level", type=int, default=6)
    args = parser.parse_args()
    points = _points(args.points)
    request = PatchRequest(
        composite=CompositeWindow("2019-04-01", "2019-10-01", 20.0),  # the shipped window
        radius=args.radius,
        points_per_file=args.points,
    )
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cpus, "
        f"{args.points} points, {2 * args.radius + 1} px, 5 bands, gzip level {args.gzip_level}"
    )
    rates = {}
    for workers in (1, 2):
        earth = SimulatedEarth(seed=1, workers=workers)
        files = earth.patch_files(points, request)
        if workers > 1:  # start the pool outside the timing, as a long export amortises it
            _write(earth.patch_files(points.iloc[:4], request), args.gzip_level)
        start = time.perf_counter()
        count = _write(files, args.gzip_level)
        rates[workers] = count / (time.perf_counter() - start)
        print(f"workers={workers}: {rates[workers]:.1f} patches/s")
    print(f"speed-up 2 vs 1 workers: {rates[2] / rates[1]:.2f}x")
    close_pools()

    tasks = list(SimulatedEarth(seed=1).patch_files(points, request).values())[0].tasks
    render_s = serialize_s = gzip_s = 0.0
    sink = gzip.GzipFile(fileobj=io.BytesIO(), mode="wb", compresslevel=args.gzip_level)
    for task in tasks:
        assert isinstance(task, PatchTask)
        t0 = time.perf_counter()
        images = render_patch(task)
        t1 = time.perf_counter()
        record = frame_record(encode_example({b: im.ravel() for b, im in images.items()}))
        t2 = time.perf_counter()
        sink.write(record)
        t3 = time.perf_counter()
        render_s, serialize_s, gzip_s = render_s + t1 - t0, serialize_s + t2 - t1, gzip_s + t3 - t2
    total = render_s + serialize_s + gzip_s
    print(
        f"one core: {len(tasks) / total:.1f} patches/s; render {render_s / total:.0%}, "
        f"serialize {serialize_s / total:.0%}, gzip {gzip_s / total:.0%}"
    )


if __name__ == "__main__":
    main()
