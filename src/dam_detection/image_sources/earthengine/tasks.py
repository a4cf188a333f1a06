"""Export jobs, their fingerprints, the task manifest and the calls that start tasks.

Each export has a manifest entry (one small JSON file per export in the manifest folder, written
atomically) holding the request id, the operation name, the state and a fingerprint of the
request. The request id is stored before the start call and reused if the call is repeated, so
Earth Engine's request de-duplication prevents a second task after a crash. The queue that
decides when to start what is :mod:`.queue`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ee

from dam_detection.image_sources.earthengine.failures import FailureKind, classify
from dam_detection.image_sources.settings import TaskSettings

logger = logging.getLogger(__name__)


class ExportFailedError(RuntimeError):
    """An export task failed for good (not transient, out of attempts, cancelled, timed out)."""


@dataclass(frozen=True)
class ExportJob:
    """One export: what to start and where its manifest entry lives.

    Attributes:
        key: Manifest key and log name, e.g. ``patches-00003`` or ``scene-lake_mead``; the
            parts of a split job append ``.1`` and ``.2``.
        task: The unsubmitted ``ee.batch.Task`` (its ``config`` is the full request).
        fingerprint: Hash of the request and its destination; a different one means the request
            changed.
        file_prefix: Where the files land, relative to the bucket or Drive folder.
        split: Makes the two half-size jobs that replace this one when Earth Engine finds it too
            big (time-out, memory); ``None`` where it cannot be split.
    """

    key: str
    task: ee.batch.Task
    fingerprint: str
    file_prefix: str
    split: Callable[[], tuple[ExportJob, ExportJob]] | None = None


def request_fingerprint(task: ee.batch.Task, destination: Mapping[str, Any]) -> str:
    """SHA-256 of the task's request: the serialized graph, every export option, and where the
    files go (destination kind, bucket or Drive folder, folder, Cloud project).

    The destination is part of it so that changing the bucket or the project starts afresh
    rather than looking for files where the earlier run never wrote them.
    """
    config = dict(task.config or {})
    for name in ("description", "fileExportOptions"):  # destination names carry the fingerprint
        config.pop(name, None)
    expression = config.pop("expression")
    payload = {
        "type": str(task.task_type.value),
        "expression": ee.serializer.encode(expression, for_cloud_api=True),
        "options": config,
        "format": _format_options(task.config or {}),
        "destination": dict(destination),
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


def backoff(settings: TaskSettings, failures: int) -> float:
    """Wait after the ``failures``-th consecutive transient failure (1-based): doubling."""
    return min(settings.backoff_initial_s * 2 ** max(failures - 1, 0), settings.backoff_max_s)


def start_task(task: ee.batch.Task, request_id: str) -> str:
    """Start ``task`` under ``request_id`` (what ``Task.start`` does, with our own id).

    Returns:
        The operation name.
    """
    config = dict(task.config or {})
    config.setdefault("workloadTag", task.workload_tag)
    if task.task_type == ee.batch.Task.Type.EXPORT_TABLE:
        operation = ee.data.exportTable(request_id, config)
    elif task.task_type == ee.batch.Task.Type.EXPORT_IMAGE:
        operation = ee.data.exportImage(request_id, config)
    else:
        raise ValueError(f"unsupported task type {task.task_type}")
    return operation["name"]


def with_retries(
    call: Callable[[], Any],
    what: str,
    settings: TaskSettings,
    sleep: Callable[[float], None] = time.sleep,
) -> Any:
    """``call()``, again after a back-off while it fails transiently (at most
    ``max_attempts`` calls); anything else is raised at once.
    """
    failures = 0
    while True:
        try:
            return call()
        except Exception as error:  # noqa: BLE001 - classified below, re-raised if not transient
            failures += 1
            if classify(error).kind is not FailureKind.TRANSIENT:
                raise
            if failures >= settings.max_attempts:
                raise
            wait = backoff(settings, failures)
            logger.warning("%s failed (%s); retrying in %.0f s", what, error, wait)
            sleep(wait)
