"""kedro-viz shows the project's pipelines (README: ``kedro viz build``)."""

import json
import os
import subprocess
import sys
from pathlib import Path

from dam_detection.pipeline_registry import PIPELINE_ORDER


def test_kedro_viz_build_writes_every_pipeline(kedro_project: Path):
    env = {**os.environ, "DO_NOT_TRACK": "1"}
    kedro = Path(sys.executable).with_name("kedro")
    result = subprocess.run(
        [str(kedro), "viz", "build"],
        cwd=kedro_project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    graph = json.loads((kedro_project / "build" / "api" / "main").read_text())
    shown = {pipeline["id"] for pipeline in graph["pipelines"]}
    assert set(PIPELINE_ORDER) | {"__default__"} <= shown
    node_names = {node["name"] for node in graph["nodes"]}
    assert {"assign_splits", "summarize_segment"} <= node_names
