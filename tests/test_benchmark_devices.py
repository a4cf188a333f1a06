"""``benchmarks/devices.py``, small: the one script a GPU box would run, smoke-tested on this CPU
(a 2 x 2-patch tile and a few training steps instead of a Sentinel-2 tile and a hundred)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_device_trains_and_segments_a_tile_and_the_figures_are_kept(tmp_path):
    out = tmp_path / "devices.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks/devices.py"), "--size", "732", "--patch", "366",
         "--train-steps", "2", "--out", str(out)],
        capture_output=True, text=True, cwd=ROOT, env={**os.environ, "CUDA_VISIBLE_DEVICES": "-1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(out.read_text())
    assert figures["machine"]["cores"] >= 1 and figures["tile_px"] == 732
    (cpu,) = figures["devices"]  # the GPUs hidden: the CPU alone
    assert cpu["device"] == "CPU" and cpu["ceiling"]["gflops"] > 0
    segment = cpu["segment"]
    assert segment["seconds"] > 0 and segment["receptive_field_px"] > 0
    assert 1.0 < segment["computed_area"] < 2.0  # blocks with their halo, not whole patches
    (train,) = cpu["train"]  # mixed_float16 only where a GPU is
    assert train["precision"] == "float32" and train["steps"] == 2 and train["step_ms"] > 0
    assert "| CPU |" in done.stdout  # the Markdown row for the results file
    assert not list((ROOT / "data").glob(".bench-devices-*"))  # the tile is cleaned up
