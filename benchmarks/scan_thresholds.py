"""Benchmark: a trained FCN's detection thresholds, on validation patches and on the region.

The scan's threshold comes from validation patches (``train_metrics`` ``fcn.detection``); this
script shows what other thresholds would have given, side by side, for one trained model:

- ``validation``: train's own peaks of every whole validation patch
  (:func:`~dam_detection.pipelines.train.jobs.validation_peaks`): recall of the listed dams,
  false alarms, precision and F1 at each threshold, as train chose among them;
- ``region``: the scan is run once at a low ``--floor`` threshold, then its detections are
  sorted and evaluated at each threshold with the scan's own nodes
  (``sort_known_and_candidates``, ``evaluate_scan``): discovery recall, candidate precision,
  listed recall and candidates against the planet's truth. At the validation threshold this
  gives the scan's own figures.

A region's figures are a diagnostic of the model (is its curve better, or only its threshold
placed elsewhere?), never a way to choose the threshold: that would use the truth.

It re-runs the scan in ``--project`` (a clone of a default run: its scan outputs are replaced
by the low-threshold scan's). Pass the run's own ``--params`` (e.g. ``seed=7``) again.

Run: ``.venv/bin/python benchmarks/scan_thresholds.py --project <clone of a default run>
[--params seed=7] [--floor 0.3] [--thresholds 0.9,0.85,0.8]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
from markdown_table import print_table  # benchmarks/, beside this script

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("DO_NOT_TRACK", "1")


def parse_params(text: str) -> dict[str, Any]:
    """``a=1,b.c=x`` as Kedro's ``--params`` reads it, nested, values parsed as YAML."""
    import yaml

    params: dict[str, Any] = {}
    for item in filter(None, text.split(",")):
        key, _, value = item.partition("=")
        *parents, leaf = key.strip().split(".")
        node = params
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = yaml.safe_load(value)
    return params


def scan_at_floor(project: Path, floor: float, params: str) -> None:
    """``kedro run --pipeline scan`` in the project, every peak down to ``floor`` kept."""
    extra = f"scan.threshold={floor}" + (f",{params}" if params else "")
    command = [sys.executable, "-m", "kedro", "run", "--pipeline", "scan", "--params", extra]
    subprocess.run(command, cwd=project, check=True)


def validation_rows(context: Any, thresholds: list[float]) -> list[dict[str, Any]]:
    """Train's validation peaks at each threshold: recall, false alarms, precision, F1."""
    from dam_detection.detection.threshold import detection_at
    from dam_detection.pipelines.train.config import resolve_settings, split_files
    from dam_detection.pipelines.train.input_pipeline import make_patch_spec
    from dam_detection.pipelines.train.jobs import validation_peaks

    params, catalog = context.params, context.catalog
    # Typed settings, as the project's hook hands them to nodes (train, detection).
    settings = resolve_settings(params["train"], params["seed"], params["bands"],
                                params["patch_radius"], params["detection"])  # fmt: skip
    spec = make_patch_spec(settings["bands"], params["patch_radius"], catalog.load("band_stats"))
    files = split_files(catalog.load("shards"), "val")
    peaks = validation_peaks(catalog.load("fcn_model"), files, spec, settings["detection"],
                             int(settings["fcn"]["batch_size"]), False)  # fmt: skip
    rows = []
    for threshold in thresholds:
        scored = detection_at(peaks.dams, peaks.false_alarms, threshold)
        rows.append({f"val_{key}": round(scored[key], 3)
                     for key in ("recall", "false_alarms", "precision", "f1")})  # fmt: skip
    return rows


def region_rows(context: Any, thresholds: list[float]) -> list[dict[str, Any]]:
    """The floor scan's detections sorted and evaluated at each threshold by the scan's nodes."""
    from dam_detection.pipelines.scan import nodes
    from dam_detection.pipelines.scan.metrics import evaluate_scan
    from dam_detection.pipelines.scan.tiling import tiles_from_frame

    params, catalog = context.params, context.catalog
    scan, detection = params["scan"], params["detection"]
    region = catalog.load("scan_region")
    merged = nodes.detections_in_region(tiles_from_frame(catalog.load("scan_tiles")),
                                        catalog.load("scan_store"), region,
                                        detection)  # fmt: skip
    truth = nodes.truth_in_region(catalog.load("planet_truth"), region)
    train_metrics = catalog.load("train_metrics")
    dams, bridges = catalog.load("inventory_dams"), catalog.load("inventory_bridges")
    lookalikes = catalog.load("planet_lookalikes")
    rows = []
    for threshold in thresholds:
        confirm = nodes.confirm_threshold(scan, train_metrics, detection, threshold)
        floor = threshold if confirm is None else confirm
        kept = merged[merged["score"] >= floor].reset_index(drop=True)
        kept = kept.assign(rank=np.arange(1, len(kept) + 1))
        ranked = nodes.sort_known_and_candidates(kept, dams, bridges, {"threshold": threshold},
                                                 scan)  # fmt: skip
        metrics = evaluate_scan(ranked, truth, int(merged["epsg"].iloc[0]),
                                float(detection.tolerance_m), top_k=[10], calibration_bins=1,
                                bootstrap=0, seed=0, lookalikes=lookalikes)  # fmt: skip
        rows.append({key: metrics[key] for key in ("discovery_recall", "candidate_precision",
                                                   "listed_recall", "candidates")})  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--project", type=Path, required=True)
    parser.add_argument("--params", default="", help="the run's own --params, e.g. seed=7")
    parser.add_argument("--floor", type=float, default=0.3)
    parser.add_argument("--thresholds", default="0.9,0.85,0.8,0.75,0.7,0.65,0.6,0.55,0.5")
    parser.add_argument("--skip-scan", action="store_true", help="the floor scan is done")
    parser.add_argument("--out", type=Path, default=None, help="also write the rows as JSON")
    args = parser.parse_args()
    project = args.project.resolve()
    listed = [float(value) for value in args.thresholds.split(",")]
    if min(listed) < args.floor:
        raise SystemExit(f"--floor {args.floor} is above the lowest threshold asked for")
    if not args.skip_scan:
        scan_at_floor(project, args.floor, args.params)

    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(project)
    runtime = {**parse_params(args.params), "scan": {"threshold": args.floor}}
    with KedroSession.create(project_path=project, runtime_params=runtime) as session:
        context = session.load_context()
        chosen = float(context.catalog.load("train_metrics")["fcn"]["detection"]["threshold"])
        if chosen < args.floor:
            raise SystemExit(f"--floor {args.floor} is above the validation threshold {chosen}")
        thresholds = sorted({*listed, chosen}, reverse=True)
        rows = [
            {"threshold": round(threshold, 4), "chosen": "validation" if threshold == chosen
             else "", **validation, **region}
            for threshold, validation, region in zip(
                thresholds, validation_rows(context, thresholds),
                region_rows(context, thresholds), strict=True)
        ]  # fmt: skip
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    print(f"# {date.today()}, {machine}; {project}, params {args.params or '(default)'}")
    print_table(rows, list(rows[0]))
    if args.out:
        args.out.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
