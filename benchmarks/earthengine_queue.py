"""Benchmark: a whole inventory through the Earth Engine export queue, against a fake service.

The fake (``dam_detection.image_sources.earthengine.fake_service``) enforces Earth Engine's
queue limit (3000) and runs 2 tasks at a time; a share of its tasks fails transiently, exports
holding a heavy point time out until they are split small enough, and one export is cancelled by
a "user". The run is killed at half the simulated time it would take and started again from the
manifest, as a person would after a crash. The queue uses the shipped ``conf/earthengine``
settings (``max_active_tasks: 20``, 30 s polls).

Checked, not just timed: every point arrives exactly once except those of the cancelled export
(reported), no file is written twice, and the service's limits are never exceeded.

Run: ``.venv/bin/python benchmarks/earthengine_queue.py [--points 90000] [--per-file 50]``;
it prints a Markdown table row for ``benchmarks/results_earthengine_queue.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import ee
import geopandas as gpd
import numpy as np
from ee import apitestcase
from kedro.config import OmegaConfigLoader

from dam_detection.image_sources.base import CompositeWindow, PatchRequest
from dam_detection.image_sources.earthengine import EarthEngineSource
from dam_detection.image_sources.earthengine.fake_service import FakeEarthEngine
from dam_detection.image_sources.earthengine.tasks import ExportFailedError
from dam_detection.image_sources.settings import EarthEngineSettings
from dam_detection.tfrecord_codec import decode_example

ROOT = Path(__file__).resolve().parents[1]


class Killed(BaseException):
    """The run dies here (as SIGKILL would: nothing is cleaned up)."""


@dataclass
class Outcome:
    """What a scenario delivered and how."""

    points: int
    tasks_planned: int
    delivered: dict[str, list[int]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    queue_stats: dict[str, int] = field(default_factory=dict)
    killed_at_s: float | None = None


def offline_earth_engine() -> None:
    """Initialise earthengine-api against its wheel's algorithm list, with no network."""
    ee.data.getAlgorithms = apitestcase.GetAlgorithms
    ee.data._install_cloud_api_resource = lambda: None
    ee.deprecation._FetchDataCatalogStac = lambda: {}
    ee.Initialize(credentials=None, project="fake-project")


def shipped_settings(**overrides: Any) -> EarthEngineSettings:
    """``image_source.earthengine`` as ``conf/earthengine`` ships it, top-level keys replaced."""
    loader = OmegaConfigLoader(
        str(ROOT / "conf"), base_env="base", default_run_env="earthengine",
        merge_strategy={"parameters": "soft"},
    )  # fmt: skip
    values = dict(loader["parameters"]["image_source"]["earthengine"])
    return EarthEngineSettings.model_validate({**values, **overrides})


def inventory(count: int, seed: int) -> gpd.GeoDataFrame:
    """``count`` points spread over the contiguous United States."""
    rng = np.random.default_rng(seed)
    return gpd.GeoDataFrame(
        {"point_index": np.arange(count), "label": rng.integers(0, 2, count)},
        geometry=gpd.points_from_xy(rng.uniform(-124, -67, count), rng.uniform(25, 49, count)),
        crs="EPSG:4326",
    )


def run_scenario(
    fake: FakeEarthEngine,
    settings: EarthEngineSettings,
    points: gpd.GeoDataFrame,
    per_file: int,
    kill_at_s: float | None,
) -> Outcome:
    """Export ``points``; killed at simulated ``kill_at_s`` and resumed, when given."""
    request = PatchRequest(
        composite=CompositeWindow("2024-04-01", "2024-10-01", 20.0),
        bands=("B2",),
        radius=0,
        points_per_file=per_file,
    )

    def sleep(seconds: float) -> None:
        if kill_at_s is not None and fake.now + seconds >= kill_at_s:
            raise Killed
        fake.sleep(seconds)

    outcome = Outcome(points=len(points), tasks_planned=0)
    with fake.installed():
        try:
            first = EarthEngineSource(
                settings, project="fake-project", sleep=sleep, clock=fake.time
            )
            files = first.patch_files(points, request)
            outcome.tasks_planned = len(files)
            _collect(files, outcome)
        except Killed:
            outcome.killed_at_s = fake.now
        # The next run: a fresh process state, the same manifest, the tasks still in the service.
        again = EarthEngineSource(
            settings, project="fake-project", sleep=fake.sleep, clock=fake.time
        )
        _collect(again.patch_files(points, request), outcome)
        outcome.queue_stats = dict(again.queue.stats)
    return outcome


def _collect(files: dict[str, Any], outcome: Outcome) -> None:
    for key, chunk in files.items():
        if key in outcome.delivered or key in outcome.failed:
            continue
        try:
            records = list(chunk())
        except ExportFailedError as error:
            outcome.failed[key] = str(error)
            continue
        outcome.delivered[key] = [int(decode_example(r)["point_index"][0]) for r in records]


def check(outcome: Outcome, fake: FakeEarthEngine, points: gpd.GeoDataFrame, limit: int) -> None:
    """Raise if anything was lost, duplicated or over a limit."""
    delivered = [index for indices in outcome.delivered.values() for index in indices]
    assert len(delivered) == len(set(delivered)), "a point arrived twice"
    missing = set(points["point_index"]) - set(delivered)
    per_file = len(next(iter(outcome.delivered.values())))
    assert len(missing) <= per_file * len(outcome.failed), "points lost without a reported failure"
    assert all(count == 1 for count in fake.written.values()), "a file was written twice"
    assert fake.max_queued <= min(limit, fake.queue_limit), "the queue limit was exceeded"
    assert fake.max_running <= fake.concurrency
    assert all("cancelled" in message for message in outcome.failed.values()), outcome.failed


def main() -> None:
    """Run the scenario and print its row."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=90_000)
    parser.add_argument("--per-file", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    offline_earth_engine()
    points = inventory(args.points, args.seed)
    with tempfile.TemporaryDirectory() as folder:
        bucket = Path(folder) / "bucket"
        settings = shipped_settings(
            bucket="fake-bucket",
            read_url=bucket.as_uri(),
            manifest_dir=str(Path(folder) / "manifest"),
        )
        # The whole run's simulated length, measured first without a kill, sets the kill time.
        started = time.perf_counter()
        calm = FakeEarthEngine(bucket=Path(folder) / "calm", seed=args.seed)
        calm_settings = settings.model_copy(
            update={"manifest_dir": str(Path(folder) / "calm-manifest"),
                    "read_url": calm.bucket.as_uri()}
        )  # fmt: skip
        full = run_scenario(calm, calm_settings, points, args.per_file, None)
        check(full, calm, points, settings.tasks.max_active_tasks)
        fake = FakeEarthEngine(bucket=bucket, seed=args.seed, cancel_prefix_part="patches-00007-")
        outcome = run_scenario(fake, settings, points, args.per_file, calm.now / 2)
        wall = time.perf_counter() - started
        check(outcome, fake, points, settings.tasks.max_active_tasks)
    stats = outcome.queue_stats
    row = (
        f"| {date.today()} | {platform.processor() or platform.machine()} x{os.cpu_count()} | "
        f"{args.points:,} | {outcome.tasks_planned:,} | {fake.stats['starts']:,} | "
        f"{fake.stats['Internal error.']} | {fake.stats['Computation timed out.']} | "
        f"{fake.stats['CANCELLED']} | {stats.get('refused_starts', 0)} | "
        f"{fake.max_queued} / {fake.max_running} | {calm.now / 3600:.1f} h | "
        f"{fake.now / 3600:.1f} h (killed at {outcome.killed_at_s / 3600:.1f} h) | "
        f"{sum(map(len, outcome.delivered.values())):,} | {len(outcome.failed)} | {wall:.0f} s |"
    )
    print(row)


if __name__ == "__main__":
    main()
