"""Benchmark: ingest of the full shipped NID + NBI files versus just reading them.

Both are measured in the same process, interleaved, so that the ratio survives a noisy shared
machine. "Read" loads both shapefiles through the catalog's dataset class; "ingest" runs every
node of ``ingest_points`` on the whole inventory (``sampling.max_points: null``) from those same
reads, and "ingest + write" also writes the GeoParquet, the JSON report and the PNG map.
"default run + write" is the same with the shipped caps (about 500 points out).
Water-edge points come from the image source (a separate cost, timed by its own benchmark), so
they are disabled here.

Run: ``.venv/bin/python benchmarks/ingest_points.py [--repeats 5]``; it prints a Markdown table
row to add to ``benchmarks/results_ingest_points.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import yaml
from kedro_datasets.json import JSONDataset
from kedro_datasets.matplotlib import MatplotlibDataset

from dam_detection.datasets import VectorPointsDataset
from dam_detection.pipelines.ingest_points import nodes

ROOT = Path(__file__).resolve().parents[1]
RAW = ROOT.parent / "shared" / "data" / "points"  # real public files, read in place
FILES = {
    "nid_dams": RAW / "nid_dams_2018.shp",
    "nbi_bridges": RAW / "nbi_bridges_navigable_2018.shp",
}


def _params(whole_inventory: bool = True) -> dict:
    text = (ROOT / "conf" / "base" / "parameters_ingest_points.yml").read_text()
    params = yaml.safe_load(text)["ingest_points"]
    if whole_inventory:
        params["sampling"]["max_points"] = None
    params["water_edges"]["enabled"] = False
    return params


def read_all() -> dict:
    """The bare read: both files through the dataset the catalog uses."""
    return {name: VectorPointsDataset(filepath=str(path)).load() for name, path in FILES.items()}


def ingest(params: dict, out: Path | None = None) -> dict:
    """Every node of the pipeline, from reading to the report (and the writes when ``out``)."""
    raws = read_all()
    parts = []
    for name, raw in raws.items():
        parts += nodes.read_source(raw, params["sources"][name], source=name)
    regions = nodes.build_regions(params["regions"])
    water = nodes.sample_water_edge_points(regions, {}, params["water_edges"])
    random_points = nodes.sample_random_points(regions, params["random_negatives"])
    candidates, summaries = nodes.combine_candidates(params, water, random_points, *parts)
    selected, selection = nodes.select_points(candidates, params)
    points, split_stats = nodes.assign_splits(selected, params["split"])
    report = nodes.build_report(summaries, selection, split_stats, points)
    if out is not None:
        VectorPointsDataset(filepath=str(out / "points.parquet")).save(points)
        JSONDataset(filepath=str(out / "report.json")).save(report)
        MatplotlibDataset(filepath=str(out / "map.png")).save(nodes.plot_points_map(points))
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    repeats = parser.parse_args().repeats
    params, default = _params(), _params(whole_inventory=False)
    with tempfile.TemporaryDirectory() as folder:
        cases: dict[str, Callable[[], object]] = {
            "read": read_all,
            "ingest": lambda: ingest(params),
            "ingest + write": lambda: ingest(params, Path(folder)),
            "default run + write": lambda: ingest(default, Path(folder)),
        }
        for case in cases.values():
            case()  # warm caches and imports
        times: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(repeats):  # interleaved: the machine's noise hits every case alike
            for name, case in cases.items():
                start = time.perf_counter()
                case()
                times[name].append(time.perf_counter() - start)
        report = ingest(params)
    median = {name: statistics.median(values) for name, values in times.items()}
    print(json.dumps({"median_s": median, "points_out": report["points_out"]}, indent=2))
    print(
        f"| {date.today()} | {platform.processor() or platform.machine()}, {os.cpu_count()} cores "
        f"| {report['rows_in']} | {report['points_out']} | {median['read']:.3f} "
        f"| {median['ingest']:.3f} | {median['ingest + write']:.3f} "
        f"| {median['ingest'] / median['read']:.2f}x "
        f"| {median['ingest + write'] / median['read']:.2f}x "
        f"| {median['default run + write']:.3f} "
        f"| {median['default run + write'] / median['read']:.2f}x |"
    )


if __name__ == "__main__":
    main()
