"""The scale benchmark's scenario, small: an inventory through a fake Earth Engine with limits,
failures, a cancellation and a kill halfway (benchmarks/earthengine_queue.py runs it at NID size).
"""

from __future__ import annotations

import pytest

from benchmarks.earthengine_queue import check, inventory, run_scenario, shipped_settings
from dam_detection.image_sources.earthengine.fake_service import FakeEarthEngine

pytestmark = pytest.mark.usefixtures("ee_offline")


def test_an_inventory_goes_through_within_limits_and_survives_a_kill(tmp_path):
    points = inventory(400, seed=1)
    settings = shipped_settings(
        bucket="fake-bucket",
        read_url=(tmp_path / "bucket").as_uri(),
        manifest_dir=str(tmp_path / "manifest"),
        tasks={**shipped_settings(bucket="b").tasks.model_dump(), "max_active_tasks": 6},
    )
    fake = FakeEarthEngine(
        bucket=tmp_path / "bucket", queue_limit=8, concurrency=2, transient_rate=0.1,
        too_big_points=5, heavy_every=37, cancel_prefix_part="patches-00005-", seed=1,
    )  # fmt: skip
    outcome = run_scenario(fake, settings, points, per_file=10, kill_at_s=900)
    assert outcome.killed_at_s is not None  # died halfway (a whole run takes ~30 min)
    check(outcome, fake, points, limit=6)  # nothing lost or twice, no limit exceeded
    assert fake.stats["Internal error."] > 0 and fake.stats["Computation timed out."] > 0
    assert list(outcome.failed) == ["patches-00005"]  # the cancelled one, reported
    assert sum(map(len, outcome.delivered.values())) == 390
    assert fake.max_queued == 6 and fake.stats["deduplicated_starts"] == 0
