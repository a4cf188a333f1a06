"""A fake Earth Engine batch service with the real one's limits, on a simulated clock.

For the scale benchmark and its small twin in the test suite: it stands in for the calls the
export queue makes (``newTaskId``, ``exportTable``, ``getOperation``) and enforces what the
real service does at inventory scale:

- a project queue of at most ``queue_limit`` tasks (Earth Engine: 3000), beyond which a start is
  refused with Earth Engine's message;
- at most ``concurrency`` tasks running at once per project (Earth Engine: a few), the rest wait
  as ``PENDING``;
- a share of tasks fails transiently ("Internal error."); a table export holding a *heavy* point
  and more than ``too_big_points`` points times out ("Computation timed out."); one chosen export
  is cancelled by a user;
- a start repeated with a known request id returns the existing operation (request
  de-duplication), so a resumed run never makes a second task.

A succeeded table export writes a small gzip TFRecord file of its points into ``bucket`` (bands
of one pixel each: the benchmark measures the queue, not the pixels). Time passes only through
:meth:`sleep`, so a run of many simulated hours takes seconds.
"""

from __future__ import annotations

import gzip
import json
import random
from collections import Counter, deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import ee
import numpy as np

from dam_detection.tfrecord_codec import encode_example, frame_record

QUEUE_FULL = "Too many tasks already in the queue (3000). Please wait for some tasks to complete."


@dataclass
class FakeOperation:
    """One task as the fake service tracks it."""

    name: str
    prefix: str
    points: list[dict[str, Any]]
    outcome: str
    duration_s: float
    submitted_at: float
    state: str = "PENDING"
    finish_at: float | None = None


@dataclass
class FakeEarthEngine:
    """The batch service, its limits, and a record of everything that happened.

    Args:
        bucket: Folder playing the Cloud Storage bucket.
        queue_limit: Tasks queued or running per project before starts are refused.
        concurrency: Tasks running at once.
        transient_rate: Share of tasks that fail with "Internal error.".
        too_big_points: A table export with more points than this that holds a heavy point
            times out.
        heavy_every: Points whose ``point_index`` is a multiple of this are heavy.
        cancel_prefix_part: The first export whose file prefix contains this is cancelled by a
            user while it runs (``None``: none is).
        seed: Seed of the random failures and durations.
        base_duration_s: Seconds a task runs, plus ``per_point_s`` per point.
        per_point_s: See ``base_duration_s``.

    Attributes:
        now: Simulated seconds since the start.
        written: Times each file prefix was written (each should be 1).
        stats: Counts of starts, refused starts, de-duplicated starts, outcomes and status
            requests.
        max_queued: The most tasks queued or running at once.
        max_running: The most tasks running at once.
    """

    bucket: Path
    queue_limit: int = 3000
    concurrency: int = 2
    transient_rate: float = 0.03
    too_big_points: int = 30
    heavy_every: int = 997
    cancel_prefix_part: str | None = None
    seed: int = 0
    base_duration_s: float = 60.0
    per_point_s: float = 2.0
    now: float = 0.0
    written: Counter[str] = field(default_factory=Counter)
    stats: Counter[str] = field(default_factory=Counter)
    max_queued: int = 0
    max_running: int = 0

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._operations: dict[str, FakeOperation] = {}
        self._pending: deque[FakeOperation] = deque()
        self._running: list[FakeOperation] = []
        self._by_request: dict[str, str] = {}
        self._ids = 0
        self._cancelled_one = False

    # --- the clock -----------------------------------------------------------------------------

    def sleep(self, seconds: float) -> None:
        """Let ``seconds`` of simulated time pass."""
        self.now += max(seconds, 0.0)
        self._advance()

    def time(self) -> float:
        """Simulated seconds (a monotonic clock)."""
        return self.now

    # --- the API -------------------------------------------------------------------------------

    @contextmanager
    def installed(self) -> Iterator[FakeEarthEngine]:
        """Route earthengine-api's batch calls here while the context is open."""
        with (
            mock.patch.object(ee.data, "newTaskId", self.new_task_id),
            mock.patch.object(ee.data, "exportTable", self.export_table),
            mock.patch.object(ee.data, "getOperation", self.get_operation),
        ):
            yield self

    def new_task_id(self, count: int = 1) -> list[str]:
        """Fresh request ids."""
        self._ids += 1
        return [f"FAKE{self._ids:07d}"]

    def export_table(self, request_id: str, config: dict[str, Any]) -> dict[str, Any]:
        """Queue a table export, or refuse it when the project's queue is full."""
        if request_id in self._by_request:  # Earth Engine's request de-duplication
            self.stats["deduplicated_starts"] += 1
            return {"name": self._by_request[request_id]}
        self._advance()
        if self._queued() >= self.queue_limit:
            self.stats["refused_starts"] += 1
            raise ee.EEException(QUEUE_FULL)
        self.stats["starts"] += 1
        destination = config["fileExportOptions"]["cloudStorageDestination"]
        points = table_points(config["expression"])
        name = f"projects/fake/operations/{request_id}"
        self._by_request[request_id] = name
        operation = FakeOperation(
            name=name,
            prefix=destination["filenamePrefix"],
            points=points,
            outcome=self._outcome(destination["filenamePrefix"], points),
            duration_s=self.base_duration_s + self.per_point_s * len(points),
            submitted_at=self.now,
        )
        self._operations[name] = operation
        self._pending.append(operation)
        self.max_queued = max(self.max_queued, self._queued())
        self._advance()
        return {"name": name, "metadata": {"state": "PENDING"}}

    def get_operation(self, name: str) -> dict[str, Any]:
        """The operation's status, as ``operations.get`` answers."""
        self.stats["status_requests"] += 1
        self._advance()
        operation = self._operations[name]
        metadata = {"state": operation.state}
        if operation.state in ("PENDING", "RUNNING"):
            return {"name": name, "metadata": metadata}
        answer: dict[str, Any] = {"name": name, "done": True, "metadata": metadata}
        if operation.state == "FAILED":
            answer["error"] = {"code": 13, "message": operation.outcome}
        elif operation.state == "CANCELLED":
            answer["error"] = {"code": 1, "message": "Cancelled."}
        return answer

    # --- the service ---------------------------------------------------------------------------

    def _queued(self) -> int:
        return len(self._pending) + len(self._running)

    def _outcome(self, prefix: str, points: list[dict[str, Any]]) -> str:
        heavy = any(int(p["point_index"]) % self.heavy_every == 0 for p in points)
        if heavy and len(points) > self.too_big_points:
            return "Computation timed out."
        if (
            self.cancel_prefix_part
            and not self._cancelled_one
            and self.cancel_prefix_part in prefix
        ):
            self._cancelled_one = True
            return "CANCELLED"
        if self._rng.random() < self.transient_rate:
            return "Internal error."
        return "SUCCEEDED"

    def _advance(self) -> None:
        # Tasks finish in time order, each freed slot going to the oldest pending task at the
        # moment it frees (not at the next status request), so simulated time is exact.
        while True:
            due = [op for op in self._running if (op.finish_at or 0.0) <= self.now]
            if not due:
                self._start_pending(self.now)
                return
            first = min(due, key=lambda op: op.finish_at or 0.0)
            self._running.remove(first)
            self._finish(first)
            self._start_pending(first.finish_at or self.now)

    def _start_pending(self, at: float) -> None:
        while self._pending and len(self._running) < self.concurrency:
            operation = self._pending.popleft()
            operation.state = "RUNNING"
            operation.finish_at = max(at, operation.submitted_at) + operation.duration_s
            self._running.append(operation)
        self.max_running = max(self.max_running, len(self._running))

    def _finish(self, operation: FakeOperation) -> None:
        self.stats[operation.outcome] += 1
        if operation.outcome == "SUCCEEDED":
            operation.state = "SUCCEEDED"
            self._write(operation)
        elif operation.outcome == "CANCELLED":
            operation.state = "CANCELLED"
        else:
            operation.state = "FAILED"

    def _write(self, operation: FakeOperation) -> None:
        self.written[operation.prefix] += 1
        records = [
            encode_example(
                {
                    "B2": np.full(1, 0.1, np.float32),
                    "label": [float(point["label"])],
                    "point_index": [float(point["point_index"])],
                }
            )
            for point in operation.points
        ]
        path = self.bucket / f"{operation.prefix}.tfrecord.gz"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(gzip.compress(b"".join(frame_record(r) for r in records), 1))


def table_points(expression: Any) -> list[dict[str, Any]]:
    """The properties of the point features a table export was built from, in order (features
    Earth Engine derives inside mapped functions carry none and are left out).
    """
    encoded = ee.serializer.encode(expression, for_cloud_api=True)
    found: list[dict[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            call = node.get("functionInvocationValue")
            if call and call.get("functionName") == "Feature" and "metadata" in call["arguments"]:
                found.append(call["arguments"]["metadata"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(encoded)
    return [_constant(metadata, encoded) for metadata in found]


def _constant(argument: dict[str, Any], encoded: dict[str, Any]) -> Any:
    if "valueReference" in argument:
        return _constant(encoded["values"][argument["valueReference"]], encoded)
    if "constantValue" in argument:
        return argument["constantValue"]
    if "dictionaryValue" in argument:
        values = argument["dictionaryValue"]["values"]
        return {key: _constant(value, encoded) for key, value in values.items()}
    raise ValueError(f"not a constant: {json.dumps(argument)[:200]}")
