"""Earth Engine offline: the algorithm list the wheel ships, no sockets, a fake task API.

``ee_offline`` initialises earthengine-api the way its own test case does (``ee.apitestcase``),
so every graph builds and serializes without a network. ``FakeTaskApi`` stands in for the three
calls that reach Earth Engine's batch service (start, status, task id) and, when a task
succeeds, writes what Earth Engine would have left in the bucket (a local folder).
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import ee
import pytest
from ee import apitestcase

PROJECT = "dam-detection-test"


@pytest.fixture(autouse=True)
def _no_sockets(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise OSError("network access is blocked in the Earth Engine tests")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.fixture(scope="session")
def _ee_session() -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ee.data, "getAlgorithms", apitestcase.GetAlgorithms)
        patch.setattr(ee.data, "_install_cloud_api_resource", lambda: None)
        patch.setattr(ee.deprecation, "_FetchDataCatalogStac", lambda: {})
        ee.Reset()
        ee.Initialize(credentials=None, project=PROJECT)
        yield
        ee.Reset()


@pytest.fixture
def ee_offline(_ee_session: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Earth Engine initialised offline; the batch calls refuse unless a test fakes them."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a test reached Earth Engine's batch API without faking it")

    for name in ("exportTable", "exportImage", "getOperation", "newTaskId", "computeFeatures"):
        monkeypatch.setattr(ee.data, name, refuse)


def destination_prefix(config: dict[str, Any]) -> str:
    """The ``filenamePrefix`` of a start request, whatever the destination."""
    options = config["fileExportOptions"]
    destination = options.get("cloudStorageDestination") or options.get("driveDestination")
    return destination["filenamePrefix"]


class FakeTaskApi:
    """Earth Engine's batch API in memory.

    Attributes:
        starts: ``(request_id, config)`` of every start request, in order.
        start_errors: Exceptions the next start calls raise, consumed in order.
        outcomes: Per start (in order), the final state: ``SUCCEEDED``, ``CANCELLED`` (a user
            cancelled it) or an error message.
        polls_before_done: Status requests that report ``RUNNING`` before the final state.
        on_success: Called with ``(request_id, config)`` when a task succeeds, to write files.
        max_live: The most tasks started and not yet finished at any moment.
    """

    def __init__(self, on_success: Callable[[str, dict[str, Any]], None] | None = None) -> None:
        self.starts: list[tuple[str, dict[str, Any]]] = []
        self.start_errors: list[Exception] = []
        self.outcomes: list[str] = []
        self.polls_before_done = 1
        self.on_success = on_success
        self.polls: dict[str, int] = {}
        self._configs: dict[str, tuple[str, dict[str, Any], str]] = {}
        self._ids = 0
        self._live: set[str] = set()
        self.max_live = 0

    def install(self, monkeypatch: pytest.MonkeyPatch) -> FakeTaskApi:
        monkeypatch.setattr(ee.data, "newTaskId", self.new_task_id)
        monkeypatch.setattr(ee.data, "exportTable", self.start)
        monkeypatch.setattr(ee.data, "exportImage", self.start)
        monkeypatch.setattr(ee.data, "getOperation", self.get_operation)
        return self

    @staticmethod
    def _require_initialized() -> None:
        # As the real calls do: they need an initialised client library.
        if not ee.data.is_initialized():
            raise ee.EEException("Earth Engine client library not initialized (fake task API)")

    def new_task_id(self, count: int = 1) -> list[str]:
        self._require_initialized()
        self._ids += 1
        return [f"TASKID{self._ids:04d}"]

    def start(self, request_id: str, config: dict[str, Any]) -> dict[str, Any]:
        self._require_initialized()
        if self.start_errors:
            raise self.start_errors.pop(0)
        outcome = (
            self.outcomes[len(self.starts)]
            if len(self.starts) < len(self.outcomes)
            else "SUCCEEDED"
        )
        self.starts.append((request_id, config))
        name = f"projects/{PROJECT}/operations/{request_id}"
        self._configs[name] = (request_id, config, outcome)
        self._live.add(name)
        self.max_live = max(self.max_live, len(self._live))
        return {"name": name, "metadata": {"state": "PENDING"}}

    def get_operation(self, name: str) -> dict[str, Any]:
        self._require_initialized()
        request_id, config, outcome = self._configs[name]
        polls = self.polls[name] = self.polls.get(name, 0) + 1
        if polls <= self.polls_before_done:
            return {"name": name, "metadata": {"state": "RUNNING", "progress": 0.5}}
        self._live.discard(name)
        if outcome == "CANCELLED":
            return {
                "name": name,
                "done": True,
                "metadata": {"state": "CANCELLED"},
                "error": {"code": 1, "message": "Cancelled."},
            }
        if outcome == "SUCCEEDED":
            if polls == self.polls_before_done + 1 and self.on_success:
                self.on_success(request_id, config)
            return {"name": name, "done": True, "metadata": {"state": "SUCCEEDED"}}
        return {
            "name": name,
            "done": True,
            "metadata": {"state": "FAILED"},
            "error": {"code": 3, "message": outcome},
        }


@pytest.fixture
def bucket(tmp_path: Path) -> Path:
    """A local folder playing the Cloud Storage bucket."""
    folder = tmp_path / "bucket"
    folder.mkdir()
    return folder


@pytest.fixture
def ee_initialize_offline(
    ee_offline: None, monkeypatch: pytest.MonkeyPatch
) -> Iterator[list[dict[str, Any]]]:
    """``ee.Initialize`` made offline, for code that initialises Earth Engine itself (the hook).

    Earth Engine is reset first, so :class:`FakeTaskApi` refuses every call (as the real batch
    API does) until ``ee.Initialize`` has run again. Each call is recorded (the returned list,
    keyword arguments as given) and initialises against the wheel's algorithm list whatever the
    credentials. The session's offline initialisation is restored afterwards, and the project's
    once-per-process memory is cleared on both sides.
    """
    from dam_detection.image_sources.earthengine import session

    calls: list[dict[str, Any]] = []
    initialize = ee.Initialize

    def offline(credentials: Any = "persistent", project: str | None = None, **kwargs: Any):
        calls.append({"credentials": credentials, "project": project, **kwargs})
        initialize(credentials=None, project=project)

    monkeypatch.setattr(ee, "Initialize", offline)
    monkeypatch.setattr(session, "_check_reachable", lambda: None)  # as if online
    session.reset()
    ee.Reset()
    try:
        yield calls
    finally:
        session.reset()
        ee.Reset()
        initialize(credentials=None, project=PROJECT)


@pytest.fixture
def scene_source(bucket: Path, tmp_path: Path) -> Any:
    """An ``EarthEngineSource`` exporting to ``bucket``, its manifest in ``tmp_path``, never
    waiting between status polls."""
    from dam_detection.image_sources.earthengine import EarthEngineSource
    from tests.settings import earthengine_settings

    settings = earthengine_settings(
        bucket="dams",
        read_url=bucket.as_uri(),
        manifest_dir=str(tmp_path / "manifest"),
        tasks={"poll_interval_s": 0},
    )
    return EarthEngineSource(settings, project=PROJECT)
