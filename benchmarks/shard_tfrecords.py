"""Benchmark: ``shard_tfrecords`` against the floor of a bare copy, measured in the same run.

The floor reads, decompresses, parses, serializes, compresses and writes every record once,
with the same processes (started the same way) and file partition as the pipeline, and does
nothing else. The pipeline
run is the real thing: ``plan_shard_tasks`` -> ``TFRecordShardsDataset.save`` (checks, shuffle,
routing, statistics) -> ``summarize_shards``. Each run is a fresh child process so that its peak
memory (own and workers' maximum RSS) is its own; runs alternate floor/pipeline to share the
noise of a busy machine.

Usage:
    python benchmarks/shard_tfrecords.py --records 160 480 --repeats 3 --workers 2 --compresslevel 1
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from dam_detection.datasets.tfrecord_shards import worker_context
from dam_detection.tfrecord_codec import (
    decode_example,
    encode_example,
    frame_record,
    iter_records,
    open_record_stream,
)

RADIUS = 128
BANDS = ["B2", "B3", "B4", "NDWI", "AVE"]
RECORDS_PER_FILE = 4
SPLITS = ("train",) * 7 + ("val", "val", "test")


def _smooth(rng: np.random.Generator, size: int, scale: int) -> np.ndarray:
    coarse = rng.normal(0.0, 1.0, (size // scale + 2, size // scale + 2))
    fine = np.kron(coarse, np.ones((scale, scale)))[:size, :size]
    return fine + 0.15 * rng.normal(0.0, 1.0, (size, size))


def realistic_patch(rng: np.random.Generator, point_index: int) -> bytes:
    """A 257x257 five-band record as Earth Engine exports it: S2 reflectance in 1e-4 steps,
    NDWI in float, elevation in whole metres, label and point index as floats."""
    size = 2 * RADIUS + 1
    land = _smooth(rng, size, 16)
    water = land < -0.6
    bands = {}
    for name, base in (("B2", 0.07), ("B3", 0.08), ("B4", 0.09), ("B8", 0.25)):
        value = base + 0.03 * land + 0.005 * rng.normal(0.0, 1.0, (size, size))
        if name == "B8":
            value[water] = 0.02
        bands[name] = np.round(np.clip(value, 0.001, 1.0) * 10000) / 10000
    ndwi = (bands["B3"] - bands["B8"]) / (bands["B3"] + bands["B8"])
    features = {name: bands[name].astype(np.float32) for name in ("B2", "B3", "B4")}
    features["NDWI"] = ndwi.astype(np.float32)
    features["AVE"] = np.round(400 + 30 * _smooth(rng, size, 32)).astype(np.float32)
    features["label"] = float(point_index % 2)
    features["point_index"] = float(point_index)
    return encode_example(features)


def make_input(folder: Path, records: int, seed: int = 0) -> None:
    """``records`` realistic records in gzip files of :data:`RECORDS_PER_FILE`."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    template = [realistic_patch(rng, i) for i in range(RECORDS_PER_FILE)]
    for number in range(records // RECORDS_PER_FILE):
        # Distinct point indices per record; pixel data repeats every file (generation is slow).
        payload = b"".join(
            frame_record(_with_index(template[i], number * RECORDS_PER_FILE + i))
            for i in range(RECORDS_PER_FILE)
        )
        (folder / f"patches-{number:05d}.tfrecord.gz").write_bytes(gzip.compress(payload, 6))


def _with_index(record: bytes, point_index: int) -> bytes:
    features = decode_example(record)
    features["point_index"] = np.array([point_index], dtype=np.float32)
    return encode_example(features)


def _copy_files(paths: list[str], out_folder: str, level: int) -> int:
    count = 0
    for path in paths:
        target = Path(out_folder) / (Path(path).name + ".copy.gz")
        with open(path, "rb") as raw, open(target, "wb") as out:
            stream = gzip.GzipFile(
                filename="", mode="wb", fileobj=out, compresslevel=level, mtime=0
            )
            for record in iter_records(open_record_stream(raw)):
                stream.write(frame_record(encode_example(decode_example(record))))
                count += 1
            stream.close()
    return count


def run_floor(input_folder: Path, output: Path, workers: int, level: int, seed: int) -> int:
    """The bare copy, with the pipeline's file partition (seeded order, round-robin)."""
    paths = sorted(str(p) for p in input_folder.glob("*.tfrecord.gz"))
    order = np.random.default_rng(seed).permutation(len(paths))
    tasks = workers
    shares = [[paths[i] for i in order[t::tasks]] for t in range(tasks)]
    output.mkdir(parents=True)
    with ProcessPoolExecutor(workers, mp_context=worker_context()) as pool:
        return sum(pool.map(_copy_files, shares, [str(output)] * tasks, [level] * tasks))


def run_pipeline(input_folder: Path, output: Path, workers: int, level: int, seed: int) -> int:
    """The pipeline's nodes and datasets, as ``kedro run --pipelines shard_tfrecords`` runs them."""
    import geopandas as gpd
    from shapely.geometry import Point

    from dam_detection.datasets.tfrecord_files import list_tfrecord_files
    from dam_detection.datasets.tfrecord_shards import SUMMARY_NAME, TFRecordShardsDataset
    from dam_detection.pipelines.shard_tfrecords.nodes import plan_shard_tasks, summarize_shards

    files = list_tfrecord_files(str(input_folder))
    count = len(files) * RECORDS_PER_FILE
    points = gpd.GeoDataFrame(
        {
            "point_index": np.arange(count),
            "split": [SPLITS[i % len(SPLITS)] for i in range(count)],
            "kind": ["dam" if i % 2 else "random" for i in range(count)],
        },
        geometry=[Point(0.0, 0.0)] * count,
        crs="EPSG:4326",
    )
    params = {"tasks": workers, "records_per_shard": 32, "min_shards_per_split": 4}
    shard_tasks = plan_shard_tasks(files, points, BANDS, RADIUS, seed, params)
    shards = TFRecordShardsDataset(
        filepath=str(output), save_args={"workers": workers, "compresslevel": level}
    )
    shards.save(shard_tasks)
    summary = json.loads((output / SUMMARY_NAME).read_text())
    _, report = summarize_shards(shards.load(), summary, BANDS)
    return int(report["totals"]["kept"])


def single_process_ratio(input_folder: Path, level: int, repeats: int) -> list[float]:
    """CPU seconds of one pipeline task over those of the bare copy, same files, one process.

    Without worker start-up and scheduling noise this isolates the per-record cost of the
    checks, statistics and routing.
    """
    import fsspec
    import geopandas as gpd
    from shapely.geometry import Point

    from dam_detection.datasets.tfrecord_files import list_tfrecord_files
    from dam_detection.datasets.tfrecord_shards import run_task
    from dam_detection.pipelines.shard_tfrecords.nodes import plan_shard_tasks

    files = list_tfrecord_files(str(input_folder))
    count = len(files) * RECORDS_PER_FILE
    points = gpd.GeoDataFrame(
        {"point_index": np.arange(count), "split": [SPLITS[i % 10] for i in range(count)]},
        geometry=[Point(0.0, 0.0)] * count,
    ).assign(kind="dam")
    params = {"tasks": 1, "records_per_shard": 32}
    (task,) = plan_shard_tasks(files, points, BANDS, RADIUS, 42, params)
    ratios = []
    for _ in range(repeats):
        scratch = Path(tempfile.mkdtemp(prefix="bench-single-"))
        start = time.process_time()
        _copy_files(list(files.paths), str(scratch), level)
        floor = time.process_time() - start
        start = time.process_time()
        run_task(task, fsspec.filesystem("file"), str(scratch / "staging"), 0, level)
        ratios.append((time.process_time() - start) / floor)
        shutil.rmtree(scratch)
    return ratios


def child(kind: str, input_folder: Path, workers: int, level: int) -> None:
    """One measured run, printed as JSON: seconds, records, peak RSS of this process and workers."""
    output = Path(tempfile.mkdtemp(prefix=f"bench-{kind}-")) / "out"
    if kind == "pipeline":  # libraries a Kedro session has loaded before the nodes run
        import geopandas  # noqa: F401

        import dam_detection.pipelines.shard_tfrecords.nodes  # noqa: F401
    runner = run_floor if kind == "floor" else run_pipeline
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu_before = usage.ru_utime + usage.ru_stime
    start = time.perf_counter()
    records = runner(input_folder, output, workers, level, 42)
    seconds = time.perf_counter() - start
    shutil.rmtree(output.parent)
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    itself = resource.getrusage(resource.RUSAGE_SELF)
    cpu = sum(u.ru_utime + u.ru_stime for u in (children, itself)) - cpu_before
    print(json.dumps({"kind": kind, "seconds": seconds, "cpu_seconds": cpu, "records": records,
                      "parent_mb": own, "worker_mb": children.ru_maxrss / 1024}))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, nargs="+", default=[160, 480])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--compresslevel", type=int, default=1)
    parser.add_argument("--child", choices=["floor", "pipeline"])
    parser.add_argument("--input", type=Path)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.input, args.workers, args.compresslevel)
        return
    root = Path(tempfile.mkdtemp(prefix="bench-shard-"))
    try:
        results = []
        for records in args.records:
            folder = root / f"in-{records}"
            make_input(folder, records)
            size_mb = sum(p.stat().st_size for p in folder.iterdir()) / 2**20
            if records == args.records[0]:
                ratios = single_process_ratio(folder, args.compresslevel, args.repeats)
                print("single-process CPU ratio pipeline/floor:", [round(r, 3) for r in ratios])
            for repeat in range(args.repeats):
                for kind in ("floor", "pipeline") if repeat % 2 == 0 else ("pipeline", "floor"):
                    options = [
                        "--workers",
                        str(args.workers),
                        "--compresslevel",
                        str(args.compresslevel),
                    ]
                    command = [sys.executable, __file__, "--child", kind, "--input", str(folder)]
                    command += options
                    line = subprocess.run(command, check=True, capture_output=True, text=True)
                    result = json.loads(line.stdout.strip().splitlines()[-1])
                    result.update(input_records=records, input_mb=round(size_mb, 1))
                    results.append(result)
                    print(json.dumps(result), flush=True)
        _print_table(results, args)
    finally:
        shutil.rmtree(root)


def _print_table(results: list[dict], args: argparse.Namespace) -> None:
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    print(
        f"\nmachine: {machine}; workers: {args.workers}; gzip level {args.compresslevel}; "
        f"python {platform.python_version()}; {args.repeats} runs each, alternating"
    )
    print(
        "| records | input MB | wall s floor / pipeline (min) | ratio (min) | "
        "wall s floor / pipeline (median) | ratio (median) | CPU s floor / pipeline (median) | "
        "CPU ratio | peak worker MB floor / pipeline | peak parent MB floor / pipeline |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for records in args.records:
        rows = {
            k: [r for r in results if r["input_records"] == records and r["kind"] == k]
            for k in ("floor", "pipeline")
        }

        def pick(key: str, reduce, rows=rows) -> list[float]:
            return [float(reduce([r[key] for r in rows[k]])) for k in ("floor", "pipeline")]

        fastest, median = pick("seconds", min), pick("seconds", np.median)
        cpu, worker, parent = (
            pick("cpu_seconds", np.median),
            pick("worker_mb", max),
            pick("parent_mb", max),
        )
        print(
            f"| {records} | {rows['floor'][0]['input_mb']} | {fastest[0]:.2f} / {fastest[1]:.2f} "
            f"| {fastest[1] / fastest[0]:.3f} | {median[0]:.2f} / {median[1]:.2f} | "
            f"{median[1] / median[0]:.3f} | {cpu[0]:.1f} / {cpu[1]:.1f} | {cpu[1] / cpu[0]:.3f} "
            f"| {worker[0]:.0f} / {worker[1]:.0f} | {parent[0]:.0f} / {parent[1]:.0f} |"
        )


if __name__ == "__main__":
    main()
