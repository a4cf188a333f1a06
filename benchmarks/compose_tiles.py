"""Benchmark: composing the planet's 10 km tiles, side by side with a previous version.

Composing tiles is most of ``publish_planet_inventories`` (the default run composes the 144
tiles of its training region there, and the scan's 30 more ahead of the scan). This composes
the same tiles of the default region with this checkout and with ``--baseline-ref`` (a git
worktree under ``benchmarks/_work``), each in its own subprocess on one core, the two versions
taking turns for ``--rounds`` rounds, and checks that both give the same planet, bit for bit
(terrain, water, cover, structures, brightness, the dams and their reservoirs, bridges, lakes,
look-alikes, and the state the tile's generator is left in).

Then, with ``--publish``, it times the default run's own step on both versions: the planet's
inventories of the default region on 2 rendering processes, with an empty tile cache.

Usage::

    .venv/bin/python benchmarks/compose_tiles.py --baseline-ref 9be5377 --publish
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "benchmarks" / "_work"

#: Composes tiles of the default region (zone 32612) and prints seconds and a digest.
COMPOSE_CODE = """
import hashlib, json, sys, time
import numpy as np
from dam_detection.image_sources.simulated import SimulatedEarth, world
density = json.loads(sys.argv[2])
planet = SimulatedEarth(seed=42, workers=1, cloud_rate=0.4, density=density).planet
side = int(sys.argv[1])
keys = [world.TileKey(32612, 49 + i, 400 + j) for i in range(side) for j in range(side)]
digest = hashlib.sha1()
def add(array):
    digest.update(np.ascontiguousarray(array).tobytes())
seconds = []
for key in keys:
    start = time.perf_counter()
    layout = world._compose(planet, key)
    seconds.append(time.perf_counter() - start)
    canvas = layout.canvas
    for name in ("terrain", "water", "cover", "structure", "brightness"):
        add(getattr(canvas, name))
    for dam in layout.dams:
        add(np.array([*dam.wall_centre, dam.crest_length_px]))
        add(dam.reservoir)
        digest.update((dam.material + dam.kind).encode())
    for lake in layout.lakes:
        add(lake)
    digest.update(repr((layout.bridges, layout.lookalikes)).encode())
    digest.update(repr(canvas.rng.bit_generator.state).encode())
print(json.dumps({"tiles": len(keys), "seconds": seconds, "digest": digest.hexdigest()}))
"""

#: The default run's publish step on 2 processes, with an empty tile cache.
PUBLISH_CODE = """
import json, sys, tempfile, time
import geopandas as gpd, shapely
from dam_detection.image_sources.simulated import SimulatedEarth
density, inventories = json.loads(sys.argv[1]), json.loads(sys.argv[2])
region = gpd.GeoDataFrame(geometry=[shapely.box(-110.9, 37.0, -110.0, 37.75)], crs=4326)
with tempfile.TemporaryDirectory() as cache:
    earth = SimulatedEarth(seed=42, workers=2, cloud_rate=0.4, density=density,
                           inventories=inventories, tile_cache=cache)
    start = time.perf_counter()
    publication = earth.publish_inventories(region)
    seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "dams": len(publication.truth),
                  "listed": int(publication.truth["listed_national"].sum())}))
"""


def _default_settings() -> tuple[dict, dict]:
    """The planet's density and inventory rules from ``conf/base/parameters.yml``."""
    import yaml

    params = yaml.safe_load((ROOT / "conf" / "base" / "parameters.yml").read_text())
    simulated = params["image_source"]["simulated"]
    inventories = dict(simulated["inventories"])
    inventories.pop("publish", None)
    return simulated["density"], inventories


def _source(ref: str | None) -> Path:
    """``src`` of this checkout (``None``) or of a worktree of ``ref``."""
    if ref is None:
        return ROOT / "src"
    tree = WORK / f"baseline-{ref}"
    if not tree.exists():
        WORK.mkdir(parents=True, exist_ok=True)
        subprocess.run(["git", "worktree", "add", "--detach", str(tree), ref], cwd=ROOT,
                       check=True, capture_output=True)  # fmt: skip
    return tree / "src"


def _run(src: Path, code: str, *args: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(src)}
    out = subprocess.run([sys.executable, "-c", code, *args], env=env, check=True,
                         capture_output=True, text=True)  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--baseline-ref", default="9be5377")
    parser.add_argument("--side", type=int, default=3, help="tiles along each side")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--publish", action="store_true")
    args = parser.parse_args()
    density, inventories = _default_settings()
    versions = {args.baseline_ref: _source(args.baseline_ref), "this checkout": _source(None)}
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cpus; one core each")
    seconds: dict[str, list[float]] = {name: [] for name in versions}
    digests: dict[str, set[str]] = {name: set() for name in versions}
    for _ in range(args.rounds):
        for name, src in versions.items():
            result = _run(src, COMPOSE_CODE, str(args.side), json.dumps(density))
            seconds[name] += result["seconds"]
            digests[name].add(result["digest"])
    same = len(set.union(*digests.values())) == 1
    print(f"{args.side**2} tiles x {args.rounds} rounds; the same planet bit for bit: {same}")
    print("| version | s per tile (mean) | s per tile (median) |")
    print("|---|---|---|")
    for name, values in seconds.items():
        ordered = sorted(values)
        print(f"| {name} | {sum(values) / len(values):.3f} | {ordered[len(ordered) // 2]:.3f} |")
    if args.publish:
        print("| version | publish_inventories of the default region, 2 processes, s |")
        print("|---|---|")
        for name, src in versions.items():
            result = _run(src, PUBLISH_CODE, json.dumps(density), json.dumps(inventories))
            print(f"| {name} | {result['seconds']:.1f} ({result['dams']} dams, "
                  f"{result['listed']} listed) |")  # fmt: skip
    if not same:
        sys.exit("the two versions composed different planets")


if __name__ == "__main__":
    main()
