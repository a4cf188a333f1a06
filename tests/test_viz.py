"""kedro-viz shows the project's pipelines (README: ``kedro viz build``)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dam_detection.pipeline_registry import PIPELINE_ORDER


@pytest.mark.slow
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
    assert {"assign_splits", "segment_tiles_on_dask", "summarize_scan"} <= node_names
    # Each pipeline is a namespace: a collapsible box holding its nodes, ...
    boxes = graph["modular_pipelines"]
    assert set(PIPELINE_ORDER) <= set(boxes)
    assert any(child["type"] == "task" for child in boxes["train"]["children"])
    # ... and catalog entries are drawn on their data layers.
    layer_of = {node["name"]: node.get("layer") for node in graph["nodes"]}
    assert layer_of["points"] == "primary" and layer_of["fcn_model"] == "models"
    assert layer_of["scan_metrics"] == layer_of["scan_review"] == "reporting"
    assert layer_of["scan_store"] == "model_output"
