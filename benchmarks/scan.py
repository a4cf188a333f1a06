"""Benchmark: the region scan on Dask. Every figure in one run, on one machine.

- ``speedup``: the same tiles on a LocalCluster of 1 worker x 1 thread, then 2 workers x 1
  thread (each run in a fresh store, so nothing is skipped), and the ratio of wall times;
- ``memory``: peak RSS of each worker for a region and for one of 4 times its area (2 workers);
- ``resume``: a scan started in a child process is killed with SIGKILL (the process group:
  scheduler, workers and all) once half its tiles are finished, then run again; the candidates
  must equal an uninterrupted scan's;
- ``conus``: measured seconds per km² per worker, extrapolated to the contiguous United States
  (8.1 million km²).

It reads what a default run wrote in ``--project`` (the trained FCN, its metadata, band
statistics, the validation threshold, the planet's tile cache) and the default parameters.

Run: ``.venv/bin/python benchmarks/scan.py --project <clone of a default run> [--tiles 4]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
CONUS_KM2 = 8.1e6


def parameters(project: Path) -> dict:
    from kedro.config import OmegaConfigLoader

    loader = OmegaConfigLoader(str(project / "conf"), base_env="base", default_run_env="local",
                               merge_strategy={"parameters": "soft"})  # fmt: skip
    return dict(loader["parameters"])


def make_job(project: Path):
    """The scan's job as the default run builds it, from the project's files."""
    import keras

    from dam_detection import model_layers  # noqa: F401  (registers the models' own layers)
    from dam_detection.image_sources.base import make_image_source
    from dam_detection.image_sources.settings import ImageSourceSettings
    from dam_detection.pipelines.gee_export.nodes import composite_window
    from dam_detection.pipelines.gee_export.settings import CompositeWindowSettings
    from dam_detection.pipelines.scan.settings import ScanSettings
    from dam_detection.pipelines.scan.tile_scan import ModelPayload, TileJob
    from dam_detection.pipelines.segment.blocks import halo_for

    params = parameters(project)
    scan = ScanSettings.model_validate(params["scan"])
    source_settings = ImageSourceSettings.model_validate(params["image_source"])
    cache = source_settings.simulated.tile_cache
    simulated = source_settings.simulated.model_copy(
        update={"tile_cache": str(project / cache) if cache else None}
    )
    source_settings = source_settings.model_copy(update={"simulated": simulated})
    source = make_image_source(source_settings, params["seed"])
    metadata = json.loads((project / "data/06_models/fcn.json").read_text())
    stats = json.loads((project / "data/05_model_input/stats.json").read_text())["bands"]
    metrics = json.loads((project / "data/08_reporting/train_metrics.json").read_text())
    model = keras.models.load_model(project / "data/06_models/fcn.keras")
    composite = composite_window(CompositeWindowSettings.model_validate(
        params["gee_export"]["composite"]))  # fmt: skip
    job = TileJob(
        reader=source.block_reader(composite, metadata["bands"]), bands=tuple(metadata["bands"]),
        band_stats=stats, model=ModelPayload.of(model),
        halo=halo_for(int(metadata["receptive_field_px"])), block_px=scan.block_px,
        blocks_per_batch=scan.blocks_per_batch,
        threshold=float(metrics["fcn"]["detection"]["threshold"]),
        min_distance_px=float(params["detection"]["min_distance_px"]),
        smoothing_px=float(params["detection"]["smoothing_px"]),
        views=int(params["detection"]["views"]),  # as the default run's scan predicts
        water_ndwi=scan.matching.water_ndwi,
        reservoir_reach_px=scan.matching.reservoir_reach_m / 10,
        chip_px=scan.chips.size_px, chip_scale=scan.chips.scale, fingerprint="benchmark",
        # The tiles are scanned without inventory points (ListedPoints()): nothing to confirm.
        confirm_threshold=None, confirm_reach_px=0.0,
    )  # fmt: skip
    return job, scan, params


def region_tiles(scan, count: int):
    """The first ``count`` tiles of the default region's grid (west to east, north to south),
    extended east beyond it when more are asked for."""
    import shapely

    from dam_detection.pipelines.scan.tiling import plan_tiles

    west, south, east, north = scan.region.bbox
    width = east - west
    for stretch in range(1, 20):
        tiles = plan_tiles(shapely.box(west, south, west + width * stretch, north),
                           "bench", scan.tiles.size_px, scan.tiles.overlap_px)  # fmt: skip
        if len(tiles) >= count:
            return tiles[:count]
    raise ValueError(f"no region of {count} tiles")


def warm_planet_tiles(job, tiles) -> int:
    """Compose (into the tile cache, on both cores) every planet tile the scan tiles' windows
    meet; returns how many planet tiles that is."""
    from dam_detection.image_sources.simulated.world import prefetch_features, tiles_covering

    planet = job.reader.planet
    keys = []
    for tile in tiles:
        west = (tile.window_col - job.halo) * 10.0
        north = (tile.window_top + job.halo + 1) * 10.0
        side = (tile.window_px + 2 * job.halo) * 10.0
        keys += tiles_covering(planet, tile.epsg, (west, north - side, west + side, north))
    keys = list(dict.fromkeys(keys))
    prefetch_features(planet, keys, 2)
    return len(keys)


def run_scan(job, tiles, workers: int, store_path: Path) -> dict:
    from dam_detection.pipelines.scan.cluster import dask_client, run_tasks
    from dam_detection.pipelines.scan.settings import ClusterSettings
    from dam_detection.pipelines.scan.store import TileStore
    from dam_detection.pipelines.scan.tile_scan import ListedPoints, scan_tile

    store = TileStore(store_path)
    todo = [t for t in tiles if not store.finished(t.tile_id, job.fingerprint)]
    settings = ClusterSettings(address=None, n_workers=workers, threads_per_worker=1,
                               memory_limit="8GiB", retries=1)  # fmt: skip
    start = time.perf_counter()
    with dask_client(settings) as client:
        started = time.perf_counter()
        summaries = run_tasks(client, scan_tile, [(t.tile_id, (t, ListedPoints(), store))
                                                  for t in todo], job, retries=1)  # fmt: skip
    end = time.perf_counter()
    return {
        "workers": workers, "tiles": len(todo), "wall_s": round(end - start, 1),
        "tasks_s": round(end - started, 1),
        "peak_rss_mb_per_worker": max((s["peak_rss_mb"] for s in summaries), default=None),
        "tile_seconds": [s["seconds"] for s in summaries],
    }  # fmt: skip


def candidates(store_path: Path, tiles, job) -> list[tuple]:
    from dam_detection.pipelines.scan.merge import merge_tile_detections
    from dam_detection.pipelines.scan.store import TileStore

    store = TileStore(store_path)
    merged = merge_tile_detections([store.detections(t.tile_id) for t in tiles], tiles[0].epsg,
                                   job.min_distance_px)  # fmt: skip
    return [(r.detection_id, round(r.x, 1), round(r.y, 1), round(r.score, 4))
            for r in merged.itertuples()]  # fmt: skip


def child(project: Path, count: int, store: Path) -> None:
    """The scan the resume benchmark kills."""
    job, scan, _ = make_job(project)
    run_scan(job, region_tiles(scan, count), 2, store)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, required=True)
    parser.add_argument("--tiles", type=int, default=4)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results_scan.json")
    parser.add_argument("--steps", default="speedup,memory,resume")
    args = parser.parse_args()
    if args.child:
        child(args.project, args.tiles, args.child)
        return
    import psutil

    job, scan, params = make_job(args.project)
    steps = args.steps.split(",")
    work = Path(tempfile.mkdtemp(prefix="scan_bench_"))
    tiles = region_tiles(scan, args.tiles)
    tile_km2 = (scan.tiles.size_px * 0.01) ** 2
    result: dict = {
        "date": date.today().isoformat(), "machine": platform.processor() or platform.machine(),
        "logical_cpus": os.cpu_count(), "physical_cores": psutil.cpu_count(logical=False),
        "tile_px": scan.tiles.size_px, "tile_km2": tile_km2, "tiles": len(tiles),
    }  # fmt: skip
    print(json.dumps(result), flush=True)
    if "speedup" in steps:
        one = run_scan(job, tiles, 1, work / "one")
        two = run_scan(job, tiles, 2, work / "two")
        result["speedup"] = {"one_worker": one, "two_workers": two,
                             "ratio": round(one["tasks_s"] / two["tasks_s"], 2)}  # fmt: skip
        assert candidates(work / "one", tiles, job) == candidates(work / "two", tiles, job)
        per_km2 = one["tasks_s"] / (len(tiles) * tile_km2)
        result["conus"] = {
            "seconds_per_km2_per_worker": round(per_km2, 3),
            "hours": {str(n): round(CONUS_KM2 * per_km2 / n / 3600, 1) for n in (2, 16, 64, 256)},
        }
        print(json.dumps(result["speedup"]), flush=True)
    if "memory" in steps:
        large_tiles = region_tiles(scan, 4 * len(tiles))
        # Both regions read composed planet tiles from the cache, as a scan of real exports
        # reads files: composing a tile for the first time is the planet's cost, not the scan's.
        composed = warm_planet_tiles(job, large_tiles)
        small = run_scan(job, tiles, 2, work / "small")
        large = run_scan(job, large_tiles, 2, work / "large")
        peaks = [small["peak_rss_mb_per_worker"], large["peak_rss_mb_per_worker"]]
        result["memory"] = {"tiles": [small["tiles"], large["tiles"]],
                            "planet_tiles_composed_first": composed,
                            "peak_rss_mb_per_worker": peaks,
                            "ratio": round(peaks[1] / peaks[0], 3)}  # fmt: skip
        print(json.dumps(result["memory"]), flush=True)
    if "resume" in steps:
        reference = work / "two" if "speedup" in steps else None
        if reference is None:
            reference = work / "reference"
            run_scan(job, tiles, 2, reference)
        store = work / "killed"
        process = subprocess.Popen(
            [sys.executable, __file__, "--project", str(args.project), "--tiles",
             str(len(tiles)), "--child", str(store)], start_new_session=True,
        )  # fmt: skip
        while len(list((store / "done").glob("*.json"))) < len(tiles) // 2:
            if process.poll() is not None:
                raise RuntimeError("the scan to be killed ended first")
            time.sleep(0.2)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        finished = len(list((store / "done").glob("*.json")))
        rerun = run_scan(job, tiles, 2, store)
        same = candidates(store, tiles, job) == candidates(reference, tiles, job)
        result["resume"] = {"finished_before_kill": finished, "redone": rerun["tiles"],
                            "same_candidates": same}  # fmt: skip
        print(json.dumps(result["resume"]), flush=True)
    shutil.rmtree(work, ignore_errors=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
