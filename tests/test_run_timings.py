"""A run's timings: wall, CPU (children included) and peak memory per node and pipeline."""

from __future__ import annotations

import json
import multiprocessing
import time

import numpy as np

from dam_detection.hooks import RunTimingHooks
from dam_detection.run_timings import NodeTiming, RunTimer, rss_bytes, summarize, table


def _burn(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


class _Node:
    def __init__(self, name: str, namespace: str) -> None:
        self.name, self.namespace = name, namespace


def test_a_node_that_works_in_a_child_process_is_charged_its_cpu_time():
    # Rendering pools and Dask workers do a run's work in other processes: their CPU counts.
    timer = RunTimer()
    timer.start()
    timer.node_started("export.render", "export")
    child = multiprocessing.get_context("spawn").Process(target=_burn, args=(1.0,))
    child.start()
    child.join()
    timer.node_finished("export.render")
    timer.stop()
    (node,) = timer.report()["nodes"]
    assert node["cpu_s"] >= 0.9
    assert node["wall_s"] >= node["cpu_s"] * 0.5


def test_peak_memory_is_the_highest_the_node_reached():
    timer = RunTimer()
    timer.start()
    timer.node_started("train.fit", "train")
    before = rss_bytes(timer.process) / 2**20
    block = np.ones((400, 1024, 1024), np.uint8)  # 400 MiB, touched
    time.sleep(1.2)  # the sampler's period is 0.5 s
    del block
    timer.node_finished("train.fit")
    timer.stop()
    (node,) = timer.report()["nodes"]
    assert node["peak_rss_mb"] >= before + 350


def test_pipelines_sum_their_nodes_and_the_table_ends_with_the_whole_run():
    rows = summarize([
        NodeTiming("train.a", "train", wall_s=60.0, cpu_s=110.0, peak_rss_mb=900.0),
        NodeTiming("scan.b", "scan", wall_s=10.0, cpu_s=19.0, peak_rss_mb=3000.0),
        NodeTiming("train.c", "train", wall_s=30.0, cpu_s=40.0, peak_rss_mb=1200.0),
    ])  # fmt: skip
    assert rows == [
        {"pipeline": "train", "wall_s": 90.0, "cpu_s": 150.0, "cores_busy": 1.67,
         "peak_rss_mb": 1200},
        {"pipeline": "scan", "wall_s": 10.0, "cpu_s": 19.0, "cores_busy": 1.9,
         "peak_rss_mb": 3000},
    ]  # fmt: skip
    report = {"pipelines": rows, "wall_s": 100.0, "cpu_s": 169.0, "cores_busy": 1.69,
              "peak_rss_mb": 3000}  # fmt: skip
    lines = table(report).splitlines()
    assert lines[2] == "| train | 1 min 30 s | 2 min 30 s | 1.67 | 1.2 GiB |"
    assert lines[-1].startswith("| **whole run** | 1 min 40 s | 2 min 49 s | 1.69 |")


def _running_hooks(project_path) -> RunTimingHooks:
    """The hooks of a run that has started, in a project at ``project_path``."""
    hooks = RunTimingHooks()

    class Context:
        pass

    context = Context()
    context.project_path = project_path
    hooks.after_context_created(context)
    hooks.before_pipeline_run()
    return hooks


def test_the_hook_writes_run_timings_json_after_the_run(tmp_path):
    hooks = _running_hooks(tmp_path)
    for name, namespace in (("ingest.read", "ingest"), ("train.fit", "train")):
        node = _Node(name, namespace)
        hooks.before_node_run(node)
        _burn(0.2)
        hooks.after_node_run(node)
    hooks.after_pipeline_run()
    report = json.loads((tmp_path / "data/08_reporting/run_timings.json").read_text())
    assert [row["pipeline"] for row in report["pipelines"]] == ["ingest", "train"]
    assert all(row["cpu_s"] >= 0.15 for row in report["pipelines"])
    assert not list((tmp_path / "data/08_reporting").glob("*.tmp"))


def test_outputs_rendered_while_they_are_saved_count_to_their_node(tmp_path):
    # The patch export returns lazy records that are rendered as the catalog saves them:
    # that work happens after the node's function returned, and belongs to the node.
    hooks = _running_hooks(tmp_path)
    export, shards = _Node("gee_export.export_patches", "gee_export"), _Node("shard.w", "shard")
    hooks.before_node_run(export)
    hooks.after_node_run(export)
    _burn(0.5)  # saving the lazy output
    hooks.after_dataset_saved("patches", None, export)
    hooks.before_node_run(shards)
    hooks.after_node_run(shards)
    hooks.after_pipeline_run()
    report = json.loads((tmp_path / "data/08_reporting/run_timings.json").read_text())
    timings = {row["node"]: row for row in report["nodes"]}
    assert timings["gee_export.export_patches"]["cpu_s"] >= 0.45
    assert timings["shard.w"]["cpu_s"] < 0.3
