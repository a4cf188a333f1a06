"""The export queue: at most ``max_active_tasks`` tasks queued or running, each failure handled
by its kind, everything resumable from the manifest.

Jobs are registered in plan order. Waiting for one job drives the whole queue: each round polls
the active tasks (one status request each), starts pending jobs while slots are free, and
sleeps ``poll_interval_s``. A transient failure restarts the job after a back-off (up to
``max_attempts`` starts); a job Earth Engine found too big is split in two halves that take its
place; a permanent failure or a user's cancellation stops that job with the reason. A refused
start (the service's queue is full, a rate limit) is tried again at the next round under the same
request id, so it never makes a second task.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import ee

from dam_detection.image_sources.earthengine.failures import FailureKind, FailureRule, classify
from dam_detection.image_sources.earthengine.tasks import (
    ExportFailedError,
    ExportJob,
    backoff,
    read_entry,
    start_task,
    with_retries,
    write_entry,
)
from dam_detection.image_sources.settings import TaskSettings

logger = logging.getLogger(__name__)

#: Manifest states. STARTING: request id stored, start not confirmed. SUBMITTED / RUNNING: a
#: live task. RETRY: failed transiently, restarts after ``retry_at``. SPLIT: replaced by
#: ``children``. COMPLETED, FAILED (for good) and CANCELLED are final.
LIVE = ("SUBMITTED", "RUNNING")


class ExportQueue:
    """Runs export jobs within the service's limits.

    Args:
        manifest_dir: Folder of the manifest, one JSON per job.
        settings: Polling, retries, back-off, time-out and the active-task limit.
        sleep: Waits (a simulated clock's in benchmarks and tests).
        clock: Monotonic seconds.

    Attributes:
        completions: Jobs completed by this queue so far; a change tells a file listing made
            earlier that it may be stale.
        stats: Counts of ``starts``, ``refused_starts``, ``retries``, ``splits``, ``polls``,
            ``cancelled``, ``failed``, and ``max_active`` (the most tasks live at once).
    """

    def __init__(
        self,
        manifest_dir: str | Path,
        settings: TaskSettings,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.manifest_dir = Path(manifest_dir)
        self.settings = settings
        self._sleep, self._clock = sleep, clock
        self._jobs: dict[str, ExportJob] = {}
        self._order: list[str] = []
        self._entries: dict[str, dict[str, Any]] = {}
        self._retry_at: dict[str, float] = {}
        self.completions = 0
        self.stats: Counter[str] = Counter()

    # --- registering ---------------------------------------------------------------------------

    def add(self, job: ExportJob, after: str | None = None) -> None:
        """Register ``job`` (again: no effect), resuming its manifest entry when the request is
        unchanged. ``after`` places it behind another job in the start order.
        """
        if job.key in self._jobs:
            return
        self._jobs[job.key] = job
        position = self._order.index(after) + 1 if after in self._jobs else len(self._order)
        self._order.insert(position, job.key)
        entry = read_entry(self.manifest_dir, job.key)
        if entry is not None and entry.get("fingerprint") != job.fingerprint:
            logger.info("%s: the request or its destination changed; exporting afresh", job.key)
            entry = None
        if entry is None:
            return
        self._entries[job.key] = entry
        if entry["state"] == "SPLIT":
            self._add_parts(job)

    def _add_parts(self, job: ExportJob) -> list[str]:
        if job.split is None:
            raise ExportFailedError(f"{job.key}: the manifest says split, but it cannot be split")
        parts = job.split()
        previous = job.key
        for part in parts:
            self.add(part, after=previous)
            previous = part.key
        return [part.key for part in parts]

    # --- waiting -------------------------------------------------------------------------------

    def wait(self, key: str) -> list[dict[str, Any]]:
        """Drive the queue until ``key`` completed.

        Returns:
            The completed manifest entries of the job, or of its parts if it was split, in order.

        Raises:
            ExportFailedError: If the job (or one of its parts) failed for good, was cancelled,
                or is still unfinished after ``timeout_s``.
        """
        if key not in self._jobs:
            raise KeyError(f"{key} was never added to the export queue")
        deadline = self._clock() + self.settings.timeout_s
        while True:
            self._fill()
            done = self._outcome(key)
            if done is not None:
                return done
            if self._clock() >= deadline:
                state = self._entries.get(key, {}).get("state", "not started")
                raise ExportFailedError(
                    f"{key}: still {state} after {self.settings.timeout_s:.0f} s; started tasks "
                    "keep running in Earth Engine and the next run resumes them (raise "
                    "image_source.earthengine.tasks.timeout_s to wait longer)"
                )
            self._sleep(self._pause())
            self._poll()

    def _outcome(self, key: str) -> list[dict[str, Any]] | None:
        entry = self._entries.get(key)
        state = entry["state"] if entry else None
        if entry is None or state not in ("COMPLETED", "SPLIT", "FAILED", "CANCELLED"):
            return None
        if state == "COMPLETED":
            return [entry]
        if state == "SPLIT":
            parts = [self._outcome(child) for child in entry["children"]]
            return None if any(p is None for p in parts) else [e for p in parts for e in p or []]
        where = self.manifest_dir / f"{key}.json"
        if state == "CANCELLED":
            raise ExportFailedError(
                f"{key}: task {entry.get('operation')} was cancelled in Earth Engine, by a user; "
                f"it is not restarted. To export it again, delete {where} and run again"
            )
        raise ExportFailedError(
            f"{key}: Earth Engine task {entry.get('operation')} failed after "
            f"{entry.get('attempts')} attempt(s): {entry.get('error')}. {entry.get('advice')}. "
            f"Fix that, then delete {where} and run again"
        )

    # --- one round -----------------------------------------------------------------------------

    def _pause(self) -> float:
        # A poll interval; longer when no task is live and every pending job waits out a
        # back-off, so that an idle queue does not poll nothing.
        pause = self.settings.poll_interval_s
        if self._live() == 0:
            waiting = [
                at
                for key, at in self._retry_at.items()
                if self._entries.get(key, {}).get("state") in ("STARTING", "RETRY")
            ]
            if waiting:
                pause = max(pause, min(waiting) - self._clock())
        return pause

    def _live(self) -> int:
        return sum(1 for e in self._entries.values() if e["state"] in LIVE)

    def _fill(self) -> None:
        live = self._live()
        now = self._clock()
        for key in list(self._order):
            if live >= self.settings.max_active_tasks:
                break
            entry = self._entries.get(key)
            if entry is not None and entry["state"] not in ("STARTING", "RETRY"):
                continue
            if self._retry_at.get(key, 0.0) > now:
                continue
            if self._start(key):
                live += 1
        self.stats["max_active"] = max(self.stats["max_active"], live)

    def _start(self, key: str) -> bool:
        job, entry = self._jobs[key], self._entries.get(key)
        if entry is not None and entry["state"] == "STARTING":
            # An interrupted or refused start: the same request id cannot make a second task.
            request_id, attempts = entry["request_id"], int(entry["attempts"])
        else:
            attempts = int(entry["attempts"]) + 1 if entry else 1
            request_id = with_retries(
                lambda: ee.data.newTaskId()[0], f"{key} task id", self.settings, self._sleep
            )
        entry = {
            "key": key,
            "fingerprint": job.fingerprint,
            "file_prefix": job.file_prefix,
            "request_id": request_id,
            "attempts": attempts,
            "state": "STARTING",
            "operation": None,
            "error": None,
        }
        self._save(entry)
        try:
            operation = start_task(job.task, request_id)
        except Exception as error:  # noqa: BLE001 - classified: refused for now, or for good
            rule = classify(error)
            if rule.kind is FailureKind.TRANSIENT:
                self.stats["refused_starts"] += 1
                self._retry_at[key] = self._clock() + self.settings.poll_interval_s
                logger.info("%s: start refused for now (%s); trying again", key, error)
                return False
            self._fail(entry, str(error), rule)
            return False
        self.stats["starts"] += 1
        entry.update(state="SUBMITTED", operation=operation)
        self._save(entry)
        logger.info("%s: started %s (attempt %d/%d)", key, operation, attempts, self.max_attempts)
        return True

    @property
    def max_attempts(self) -> int:
        """Starts per job before a transient failure counts as final."""
        return self.settings.max_attempts

    def _poll(self) -> None:
        for key in list(self._order):
            entry = self._entries.get(key)
            if entry is None or entry["state"] not in LIVE:
                continue
            self.stats["polls"] += 1
            operation = with_retries(
                partial(ee.data.getOperation, entry["operation"]),
                f"{key} status",
                self.settings,
                self._sleep,
            )
            self._update(key, entry, operation)

    def _update(self, key: str, entry: dict[str, Any], operation: dict[str, Any]) -> None:
        metadata = operation.get("metadata", {})
        state = metadata.get("state", "PENDING")
        if not operation.get("done"):
            if state == "RUNNING" and entry["state"] != "RUNNING":
                entry.update(state="RUNNING")
                self._save(entry)
            return
        if state == "SUCCEEDED" and "error" not in operation:
            entry.update(state="COMPLETED", uris=metadata.get("destinationUris", []))
            self._save(entry)
            self.completions += 1
            logger.info("%s: completed", key)
            return
        message = operation.get("error", {}).get("message") or state
        rule = classify("cancelled" if state == "CANCELLED" else message)
        if rule.kind is FailureKind.CANCELLED:
            self.stats["cancelled"] += 1
            entry.update(state="CANCELLED", error=message)
            self._save(entry)
            logger.warning(
                "%s: task %s was cancelled in Earth Engine; not restarting it (delete %s to "
                "export it again)",
                key,
                entry["operation"],
                self.manifest_dir / f"{key}.json",
            )
        elif rule.kind is FailureKind.TRANSIENT and entry["attempts"] < self.max_attempts:
            self.stats["retries"] += 1
            wait = backoff(self.settings, int(entry["attempts"]))
            entry.update(state="RETRY", error=message)
            self._save(entry)
            self._retry_at[key] = self._clock() + wait
            logger.warning("%s: task failed (%s); restarting in %.0f s", key, message, wait)
        elif rule.kind is FailureKind.TOO_BIG and self._jobs[key].split is not None:
            self.stats["splits"] += 1
            children = self._add_parts(self._jobs[key])
            entry.update(state="SPLIT", error=message, children=children)
            self._save(entry)
            logger.warning("%s: too big for one task (%s); split into %s", key, message, children)
        else:
            self._fail(entry, message, rule)

    def _fail(self, entry: dict[str, Any], message: str, rule: FailureRule) -> None:
        self.stats["failed"] += 1
        advice = rule.advice or "see the message"
        if rule.kind is FailureKind.TRANSIENT:
            advice = f"it failed {entry['attempts']} times; Earth Engine may be busy: try later"
        elif rule.kind is FailureKind.TOO_BIG:
            advice = f"{rule.advice or 'too big'}, and it cannot be split: export a smaller one"
        entry.update(state="FAILED", error=message, advice=advice)
        self._save(entry)
        logger.error("%s: failed for good: %s (%s)", entry["key"], message, advice)

    def _save(self, entry: dict[str, Any]) -> None:
        self._entries[entry["key"]] = entry
        write_entry(self.manifest_dir, entry)
