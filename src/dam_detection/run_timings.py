"""Where a run's time and memory went: wall time, CPU time and peak memory per node and per
pipeline, for ``data/08_reporting/run_timings.json`` (:class:`~dam_detection.hooks.RunTimingHooks`).

CPU time and memory count the run's process and every process it started (rendering pools, Dask
workers), so a pipeline that keeps both cores busy shows a CPU time near twice its wall time.
Memory is sampled every half second, so a peak shorter than that may be missed.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import psutil

#: Seconds between memory samples.
SAMPLE_SECONDS = 0.5


def _family(process: psutil.Process) -> list[psutil.Process]:
    try:
        return [process, *process.children(recursive=True)]
    except psutil.Error:
        return [process]


def cpu_seconds(process: psutil.Process) -> float:
    """CPU time of ``process`` and its live descendants, plus that of descendants it reaped."""
    total = 0.0
    for member in _family(process):
        try:
            times = member.cpu_times()
        except psutil.Error:  # ended between listing and asking
            continue
        total += times.user + times.system
    reaped = os.times()
    return total + reaped.children_user + reaped.children_system


def rss_bytes(process: psutil.Process) -> int:
    """Resident memory of ``process`` and its live descendants."""
    total = 0
    for member in _family(process):
        try:
            total += member.memory_info().rss
        except psutil.Error:
            continue
    return total


@dataclass
class NodeTiming:
    """One node's figures."""

    node: str
    pipeline: str
    wall_s: float = 0.0
    cpu_s: float = 0.0
    peak_rss_mb: float = 0.0


@dataclass
class RunTimer:
    """Times nodes and samples memory in a background thread while a run lasts."""

    process: psutil.Process = field(default_factory=psutil.Process)
    nodes: list[NodeTiming] = field(default_factory=list)
    _open: dict[str, tuple[float, float, NodeTiming]] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _started: float = 0.0
    _started_cpu: float = 0.0
    _peak: int = 0

    def start(self) -> None:
        """Start the run's clocks and the memory sampler."""
        self._started, self._started_cpu = time.perf_counter(), cpu_seconds(self.process)
        self._stop.clear()
        self._thread = threading.Thread(target=self._sample, name="run-timings", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the memory sampler."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def node_started(self, name: str, pipeline: str) -> None:
        """A node begins (the nodes before it, their outputs saved, are closed)."""
        self._close_open()
        timing = NodeTiming(name, pipeline)
        with self._lock:
            self._open[name] = (time.perf_counter(), cpu_seconds(self.process), timing)
        self._record_memory()

    def node_finished(self, name: str) -> None:
        """A node's function returned; its outputs are saved next (see :meth:`node_saved`)."""
        self._record_memory()
        self._extend(name)

    def node_saved(self, name: str) -> None:
        """An output of the node was saved: lazy outputs (rendered or written as they are
        saved, like the patch export's records) count to their node.
        """
        self._record_memory()
        self._extend(name)

    def _extend(self, name: str) -> None:
        with self._lock:
            begun = self._open.get(name)
        if begun is None:
            return
        wall, cpu, timing = begun
        timing.wall_s = time.perf_counter() - wall
        timing.cpu_s = cpu_seconds(self.process) - cpu

    def _close_open(self) -> None:
        with self._lock:
            closed = [timing for _, _, timing in self._open.values()]
            self._open.clear()
        self.nodes.extend(closed)

    def _sample(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            self._record_memory()

    def _record_memory(self) -> None:
        rss = rss_bytes(self.process)
        with self._lock:
            self._peak = max(self._peak, rss)
            for _, _, timing in self._open.values():
                timing.peak_rss_mb = max(timing.peak_rss_mb, rss / 2**20)

    def report(self) -> dict[str, Any]:
        """The run's figures: totals, per pipeline (in the order they started) and per node."""
        self._close_open()
        wall = time.perf_counter() - self._started
        cpu = cpu_seconds(self.process) - self._started_cpu
        return {
            "wall_s": round(wall, 1),
            "cpu_s": round(cpu, 1),
            "cores_busy": round(cpu / max(wall, 1e-9), 2),
            "peak_rss_mb": round(self._peak / 2**20),
            "cpu_count": os.cpu_count(),
            "pipelines": summarize(self.nodes),
            "nodes": [
                {
                    "node": t.node,
                    "pipeline": t.pipeline,
                    "wall_s": round(t.wall_s, 1),
                    "cpu_s": round(t.cpu_s, 1),
                    "peak_rss_mb": round(t.peak_rss_mb),
                }
                for t in self.nodes
            ],  # fmt: skip
        }


def summarize(nodes: Iterable[NodeTiming]) -> list[dict[str, Any]]:
    """Per pipeline: summed wall and CPU time of its nodes, and their highest peak memory."""
    totals: dict[str, dict[str, float]] = {}
    for timing in nodes:
        row = totals.setdefault(timing.pipeline, {"wall_s": 0.0, "cpu_s": 0.0, "peak_rss_mb": 0.0})
        row["wall_s"] += timing.wall_s
        row["cpu_s"] += timing.cpu_s
        row["peak_rss_mb"] = max(row["peak_rss_mb"], timing.peak_rss_mb)
    return [
        {"pipeline": name, "wall_s": round(row["wall_s"], 1), "cpu_s": round(row["cpu_s"], 1),
         "cores_busy": round(row["cpu_s"] / max(row["wall_s"], 1e-9), 2),
         "peak_rss_mb": round(row["peak_rss_mb"])}
        for name, row in totals.items()
    ]  # fmt: skip


def table(report: Mapping[str, Any]) -> str:
    """The per-pipeline figures as a Markdown table (for the log and the benchmarks)."""
    lines = ["| pipeline | wall | CPU | cores busy | peak RSS |", "|---|---|---|---|---|"]
    rows = [*report["pipelines"], {"pipeline": "**whole run**", **report}]
    for row in rows:
        lines.append(
            f"| {row['pipeline']} | {_minutes(row['wall_s'])} | {_minutes(row['cpu_s'])} | "
            f"{row['cores_busy']:.2f} | {row['peak_rss_mb'] / 1024:.1f} GiB |"
        )
    return "\n".join(lines)


def _minutes(seconds: float) -> str:
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes} min {rest:02d} s"
