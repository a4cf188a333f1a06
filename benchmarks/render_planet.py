"""Benchmark: patch and scene rendering of the one planet, side by side with a previous version.

The planet composes 10 km tiles that every export samples; the previous simulated Earth drew
each patch as its own small world. This runs both in one session on one core:

* the baseline (``--baseline-ref``, checked out as a git worktree under ``benchmarks/_work``)
  renders the same number of patches (kinds dam/bridge/water_edge/random) and one
  2048 x 2048 scene, in a subprocess whose ``PYTHONPATH`` is the worktree's ``src``;
* the planet renders patches around the points of its own published inventory of a region
  (dams, bridges and random points, as the default run's points cluster), first with every
  tile composed afresh (cold), then with the composed tiles read from the tile cache (warm),
  and the same 2048 x 2048 scene cold and warm.

Times are render plus serialization (no gzip). Usage::

    .venv/bin/python benchmarks/render_planet.py --baseline-ref 154534d
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "benchmarks" / "_work"
SCENE = {"name": "bench", "center_lon": -109.75, "center_lat": 37.4, "width_px": 2048,
         "height_px": 2048}  # fmt: skip
REGION = (-110.6, 37.3, -110.3, 37.55)  # a corner of the default region, about 9 tiles

BASELINE_CODE = """
import json, sys, time
import geopandas as gpd, numpy as np, shapely
from dam_detection.image_sources.base import CompositeWindow, PatchRequest, SceneRequest
from dam_detection.image_sources.simulated import SimulatedEarth
count = int(sys.argv[1]); scene = json.loads(sys.argv[2])
window = CompositeWindow("2019-04-01", "2019-10-01", 20.0)
kinds = np.array(["dam", "bridge", "water_edge", "random"])[np.arange(count) % 4]
points = gpd.GeoDataFrame(
    {"point_index": np.arange(count), "kind": kinds, "label": (kinds == "dam").astype(int)},
    geometry=[shapely.Point(-110.5 + 0.002 * i, 37.4 + 0.001 * i) for i in range(count)],
    crs="EPSG:4326")
earth = SimulatedEarth(seed=42, workers=1, cloud_rate=0.4)
files = earth.patch_files(points, PatchRequest(composite=window, radius=128, points_per_file=count))
start = time.perf_counter(); n = sum(1 for chunk in files.values() for _ in chunk())
patches_s = time.perf_counter() - start
request = SceneRequest(composite=window, **scene)
start = time.perf_counter()
export = earth.scene_export(request); m = sum(1 for chunk in export.files.values() for _ in chunk())
scene_s = time.perf_counter() - start
print(json.dumps({"patches": n, "patches_s": patches_s, "scene_s": scene_s}))
"""


def baseline(ref: str, count: int) -> dict:
    """The previous version's figures, measured in a subprocess on its own checkout."""
    tree = WORK / f"baseline-{ref}"
    if not tree.exists():
        WORK.mkdir(parents=True, exist_ok=True)
        subprocess.run(["git", "worktree", "add", "--detach", str(tree), ref], cwd=ROOT,
                       check=True, capture_output=True)  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(tree / "src")}
    out = subprocess.run(
        [sys.executable, "-c", BASELINE_CODE, str(count), json.dumps(SCENE)],
        env=env, check=True, capture_output=True, text=True,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def _clear_caches() -> None:
    from dam_detection.image_sources.simulated import world

    world.compose_tile.cache_clear()
    world.clear_tile_images()
    world._FEATURES.clear()


def planet(count: int, cache: Path) -> dict:
    """The planet's figures: inventory points of a region, cold and warm, and the scene."""
    from dam_detection.image_sources.base import CompositeWindow, PatchRequest, SceneRequest
    from dam_detection.image_sources.simulated import SimulatedEarth, scene_export

    window = CompositeWindow("2019-04-01", "2019-10-01", 20.0)
    density = {"dams": 16.0, "bridges": 4.0, "lakes": 2.0, "levees": 2.0, "towns": 0.4,
               "roads": 4.0}  # fmt: skip
    inventories = {"listed_share": 0.7, "duplicate_share": 0.02, "large_reservoir_km2": 2.0,
                   "large_listed_share": 0.9, "bridges_listed_share": 0.9,
                   "position_errors": {"sigma_m": 50.0, "tail_share": 0.08, "tail_max_m": 500.0,
                                       "on_reservoir_share": 0.05}}  # fmt: skip

    def source(cached: bool) -> SimulatedEarth:
        return SimulatedEarth(seed=42, workers=1, cloud_rate=0.4, density=density,
                              inventories=inventories,
                              tile_cache=str(cache) if cached else None)  # fmt: skip

    region = gpd.GeoDataFrame({"name": ["r"]}, geometry=[shapely.box(*REGION)], crs=4326)
    publication = source(True).publish_inventories(region)  # fills the cache for "warm"
    _clear_caches()
    dams = publication.national_dams.geometry.to_numpy()
    rng = np.random.default_rng(0)
    extra = max(count - len(dams), 0)
    randoms = [shapely.Point(rng.uniform(REGION[0], REGION[2]), rng.uniform(REGION[1], REGION[3]))
               for _ in range(extra)]  # fmt: skip
    geometry = list(dams)[:count] + randoms
    points = gpd.GeoDataFrame(
        {"point_index": np.arange(len(geometry)), "kind": "dam", "label": 1},
        geometry=geometry, crs="EPSG:4326",
    )  # fmt: skip
    request = PatchRequest(composite=window, radius=128, points_per_file=len(points))
    result: dict = {"patches": len(points), "dams_listed_in_region": len(dams)}
    for label, cached in (("cold", False), ("warm", True)):
        _clear_caches()
        files = source(cached).patch_files(points, request)
        start = time.perf_counter()
        sum(1 for chunk in files.values() for _ in chunk())
        result[f"patches_{label}_s"] = time.perf_counter() - start
    scene = SceneRequest(composite=window, **SCENE)
    export = source(True).scene_export(scene)  # fills the cache with the scene's tiles
    sum(1 for chunk in export.files.values() for _ in chunk())
    for label, cached in (("cold", False), ("warm", True)):
        _clear_caches()
        scene_export._CACHE.clear()
        start = time.perf_counter()
        export = source(cached).scene_export(scene)
        sum(1 for chunk in export.files.values() for _ in chunk())
        result[f"scene_{label}_s"] = time.perf_counter() - start
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--baseline-ref", default="154534d")
    parser.add_argument("--points", type=int, default=200)
    args = parser.parse_args()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cpus, one core each")
    old = baseline(args.baseline_ref, args.points)
    cache = Path(tempfile.mkdtemp(prefix="planet_tiles_", dir=WORK))
    try:
        new = planet(args.points, cache)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    rows = [
        ("patches/s, one core", old["patches"] / old["patches_s"],
         new["patches"] / new["patches_cold_s"], new["patches"] / new["patches_warm_s"]),
        ("2048 x 2048 scene, s", old["scene_s"], new["scene_cold_s"], new["scene_warm_s"]),
    ]  # fmt: skip
    print(f"planet points: {new['patches']} ({new['dams_listed_in_region']} listed dams)")
    print(f"| measure | baseline {args.baseline_ref} | planet, tiles composed | "
          "planet, tiles from the cache |")  # fmt: skip
    print("|---|---|---|---|")
    for name, *values in rows:
        print(f"| {name} | " + " | ".join(f"{v:.1f}" for v in values) + " |")


if __name__ == "__main__":
    main()
