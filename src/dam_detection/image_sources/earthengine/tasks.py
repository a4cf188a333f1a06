"""Start Earth Engine export tasks, follow them, retry transient failures, remember them.

Each export has a manifest entry (one small JSON file per export in the manifest folder, written
atomically) holding the request id, the operation name, the state and a fingerprint of the
request. A re-run reads the entry first: a finished export is not started again, a running one is
followed, a failed one is restarted while attempts remain, and a changed request (different
fingerprint) starts afresh. The request id is stored before the start call and reused if the call
is repeated, so Earth Engine's request de-duplication prevents a second task after a crash.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import ee

logger = logging.getLogger(__name__)

#: Substrings of error messages worth another try: quota, rate, server and network trouble.
TRANSIENT_MARKERS = (
    "too many",
    "rate limit",
    "try again",
    "timed out",
    "timeout",
    "deadline",
    "internal error",
    "backend error",
    "service unavailable",
    "temporarily",
    "connection",
)
#: HTTP statuses worth another try, matched as whole numbers (a "5000 elements" is no 500).
TRANSIENT_STATUS = re.compile(r"\b(429|500|502|503|504)\b")


class ExportFailedError(RuntimeError):
    """An export task failed for good (not transient, or out of attempts)."""


@dataclass(frozen=True)
class TaskPolicy:
    """How tasks are followed and retried.

    Attributes:
        poll_interval_s: Seconds between status requests.
        max_attempts: Task starts per export before giving up on transient failures.
        backoff_initial_s: First wait after a transient failure; doubles each time.
        backoff_max_s: Longest wait between retries.
        timeout_s: Give up following a task after this long (the task keeps running; a re-run
            picks it up from the manifest).
    """

    poll_interval_s: float = 30.0
    max_attempts: int = 3
    backoff_initial_s: float = 15.0
    backoff_max_s: float = 600.0
    timeout_s: float = 12 * 3600.0

    def backoff(self, failures: int) -> float:
        """Wait after the ``failures``-th consecutive transient failure (1-based)."""
        return min(self.backoff_initial_s * 2 ** max(failures - 1, 0), self.backoff_max_s)


@dataclass(frozen=True)
class ExportJob:
    """One export: what to start and where its manifest entry lives.

    Attributes:
        key: Manifest key and log name, e.g. ``patches-00003`` or ``scene-lake_mead``.
        task: The unsubmitted ``ee.batch.Task`` (its ``config`` is the full request).
        fingerprint: Hash of the request; a different one means the request changed.
        file_prefix: Where the files land, relative to the bucket or Drive folder.
    """

    key: str
    task: ee.batch.Task
    fingerprint: str
    file_prefix: str


def request_fingerprint(task: ee.batch.Task) -> str:
    """SHA-256 of the task's request: the serialized graph plus every export option."""
    config = dict(task.config or {})
    for name in ("description", "fileExportOptions"):  # destination names carry the fingerprint
        config.pop(name, None)
    expression = config.pop("expression")
    payload = {
        "type": str(task.task_type.value),
        "expression": ee.serializer.encode(expression, for_cloud_api=True),
        "options": config,
        "format": _format_options(task.config or {}),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _format_options(config: Mapping[str, Any]) -> dict[str, Any]:
    options = dict(config.get("fileExportOptions", {}))
    options.pop("cloudStorageDestination", None)
    options.pop("driveDestination", None)
    return options


# --- manifest ----------------------------------------------------------------------------------


def read_entry(manifest_dir: str | Path, key: str) -> dict[str, Any] | None:
    """The manifest entry of ``key``, or ``None`` if it was never started."""
    path = Path(manifest_dir) / f"{key}.json"
    if not path.exists():
        return None
    return json.loads(path.read_text())


def write_entry(manifest_dir: str | Path, entry: Mapping[str, Any]) -> None:
    """Write an entry atomically (temporary file, then rename)."""
    folder = Path(manifest_dir)
    folder.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{entry['key']}.", suffix=".tmp")
    with os.fdopen(handle, "w") as file:
        json.dump(dict(entry, updated=time.strftime("%Y-%m-%dT%H:%M:%S%z")), file, indent=2)
    os.replace(temporary, folder / f"{entry['key']}.json")


# --- Earth Engine calls ------------------------------------------------------------------------


def is_transient(error: BaseException | str) -> bool:
    """Whether an error (or a failed task's message) is worth another try."""
    if isinstance(error, ConnectionError | TimeoutError):
        return True
    message = str(error).lower()
    return any(marker in message for marker in TRANSIENT_MARKERS) or bool(
        TRANSIENT_STATUS.search(message)
    )


def _start(task: ee.batch.Task, request_id: str) -> str:
    # What ``Task.start`` does, but with a request id we chose and stored beforehand.
    config = dict(task.config or {})
    config.setdefault("workloadTag", task.workload_tag)
    if task.task_type == ee.batch.Task.Type.EXPORT_TABLE:
        operation = ee.data.exportTable(request_id, config)
    elif task.task_type == ee.batch.Task.Type.EXPORT_IMAGE:
        operation = ee.data.exportImage(request_id, config)
    else:
        raise ValueError(f"unsupported task type {task.task_type}")
    return operation["name"]


def _with_retries(
    call: Callable[[], Any], what: str, policy: TaskPolicy, sleep: Callable[[float], None]
) -> Any:
    failures = 0
    while True:
        try:
            return call()
        except Exception as error:  # noqa: BLE001 - classified below, re-raised if not transient
            failures += 1
            if not is_transient(error) or failures >= policy.max_attempts:
                raise
            wait = policy.backoff(failures)
            logger.warning("%s failed (%s); retrying in %.0f s", what, error, wait)
            sleep(wait)


def submit(
    job: ExportJob,
    manifest_dir: str | Path,
    policy: TaskPolicy,
    *,
    sleep: Callable[[float], None] | None = None,
) -> dict[str, Any]:
    """Make sure ``job`` has a live or finished task; start one if needed. Does not wait.

    Returns:
        The manifest entry after submission.

    Raises:
        ExportFailedError: If every attempt failed.
    """
    sleep = sleep or time.sleep
    entry = read_entry(manifest_dir, job.key)
    if entry is not None and entry.get("fingerprint") != job.fingerprint:
        logger.info("%s: the request changed since the last run; exporting afresh", job.key)
        entry = None
    if entry is not None and entry.get("state") in ("SUBMITTED", "RUNNING", "COMPLETED"):
        return entry
    attempts = int(entry["attempts"]) if entry else 0
    if entry is not None and entry.get("state") == "STARTING":
        request_id = entry["request_id"]  # an interrupted start: same id, no duplicate task
    else:
        if attempts >= policy.max_attempts:
            last_error = entry.get("error") if entry else None
            raise ExportFailedError(
                f"{job.key}: {attempts} attempts failed, last error: {last_error}; "
                f"fix the cause, then delete {Path(manifest_dir) / job.key}.json to try again"
            )
        request_id = ee.data.newTaskId()[0]
        attempts += 1
    entry = {
        "key": job.key,
        "fingerprint": job.fingerprint,
        "file_prefix": job.file_prefix,
        "request_id": request_id,
        "attempts": attempts,
        "state": "STARTING",
        "operation": None,
        "error": None,
    }
    write_entry(manifest_dir, entry)
    operation = _with_retries(
        lambda: _start(job.task, request_id), f"{job.key} start", policy, sleep
    )
    entry.update(state="SUBMITTED", operation=operation)
    write_entry(manifest_dir, entry)
    logger.info("%s: started %s (attempt %d/%d)", job.key, operation, attempts, policy.max_attempts)
    return entry


def follow(
    job: ExportJob,
    manifest_dir: str | Path,
    policy: TaskPolicy,
    *,
    sleep: Callable[[float], None] | None = None,
    clock: Callable[[], float] | None = None,
) -> dict[str, Any]:
    """Start ``job`` if needed and wait until its task completed, restarting transient failures.

    Returns:
        The completed manifest entry.

    Raises:
        ExportFailedError: On a permanent failure, when attempts run out, or on time-out.
    """
    sleep, clock = sleep or time.sleep, clock or time.monotonic
    deadline = clock() + policy.timeout_s
    while True:
        entry = submit(job, manifest_dir, policy, sleep=sleep)
        if entry["state"] == "COMPLETED":
            return entry
        operation = _with_retries(
            partial(ee.data.getOperation, entry["operation"]), f"{job.key} status", policy, sleep
        )
        metadata = operation.get("metadata", {})
        state = metadata.get("state", "PENDING")
        if operation.get("done") and "error" not in operation and state == "SUCCEEDED":
            entry.update(state="COMPLETED", uris=metadata.get("destinationUris", []))
            write_entry(manifest_dir, entry)
            logger.info("%s: completed", job.key)
            return entry
        if operation.get("done"):
            message = operation.get("error", {}).get("message", state)
            entry.update(state="FAILED", error=message)
            write_entry(manifest_dir, entry)
            if not is_transient(message) or entry["attempts"] >= policy.max_attempts:
                raise ExportFailedError(
                    f"{job.key}: Earth Engine task {entry['operation']} failed after "
                    f"{entry['attempts']} attempt(s): {message}"
                )
            wait = policy.backoff(entry["attempts"])
            logger.warning("%s: task failed (%s); restarting in %.0f s", job.key, message, wait)
            sleep(wait)
            continue
        if entry["state"] != "RUNNING" and state == "RUNNING":
            entry.update(state="RUNNING")
            write_entry(manifest_dir, entry)
        logger.info("%s: %s %.0f%%", job.key, state, 100 * float(metadata.get("progress", 0.0)))
        if clock() >= deadline:
            raise ExportFailedError(
                f"{job.key}: still {state} after {policy.timeout_s:.0f} s; the task keeps "
                "running in Earth Engine and the next run resumes it (raise tasks.timeout_s)"
            )
        sleep(policy.poll_interval_s)
