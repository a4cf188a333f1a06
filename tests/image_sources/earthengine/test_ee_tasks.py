"""The export queue against a fake batch API: limits, retries, splits, cancellations, resuming."""

from __future__ import annotations

import dataclasses
import gzip
from pathlib import Path
from typing import Any

import ee
import geopandas as gpd
import numpy as np
import pytest
from shapely.geometry import Point

from dam_detection.image_sources.base import PatchRequest
from dam_detection.image_sources.earthengine import EarthEngineSource
from dam_detection.image_sources.earthengine.tasks import (
    ExportFailedError,
    read_entry,
    write_entry,
)
from dam_detection.tfrecord_codec import decode_example, encode_example, frame_record
from tests.image_sources.earthengine.conftest import PROJECT, FakeTaskApi, destination_prefix
from tests.image_sources.earthengine.ee_graph import point_features
from tests.settings import composite_window, earthengine_settings

WINDOW = composite_window()

pytestmark = pytest.mark.usefixtures("ee_offline")
RADIUS = 2
REQUEST = PatchRequest(composite=WINDOW, bands=("B2", "NDWI"), radius=RADIUS, points_per_file=2)


def patch_records(config: dict[str, Any]) -> list[bytes]:
    """What Earth Engine would export for the points in a table-export request."""
    records = []
    for metadata in point_features(config["expression"]):
        index = metadata["point_index"]
        values = np.arange((2 * RADIUS + 1) ** 2, dtype=np.float32) + index
        features = {"B2": values / 100, "label": [metadata["label"]], "point_index": [float(index)]}
        if index % 2 == 0:  # a masked centre pixel: the band is absent
            features["NDWI"] = -values / 100
        records.append(encode_example(features))
    return records


class Bucket:
    """Plays Earth Engine writing finished table exports into a local bucket folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.written: dict[str, list[bytes]] = {}

    def __call__(self, request_id: str, config: dict[str, Any]) -> None:
        prefix = destination_prefix(config)
        records = patch_records(config)
        self.written[prefix] = records
        data = b"".join(frame_record(r) for r in records)
        path = self.root / f"{prefix}.tfrecord.gz"
        path.parent.mkdir(parents=True, exist_ok=True)
        # Documented as gzip, real table exports also arrive uncompressed: write both kinds.
        path.write_bytes(gzip.compress(data) if len(self.written) % 2 else data)


@pytest.fixture
def points() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"point_index": [3, 1, 0, 4, 2], "label": [1, 0, 1, 0, 1]},
        geometry=[Point(-100 + i, 40 - i) for i in range(5)],
        crs="EPSG:4326",
    )


def make_source(bucket: Path, tmp_path: Path, sleeps: SimulatedClock, **overrides: Any):
    tasks = {"poll_interval_s": 0, "backoff_initial_s": 1, "backoff_max_s": 4}
    settings = earthengine_settings(
        bucket="dams",
        folder="exports",
        read_url=bucket.as_uri(),
        manifest_dir=str(tmp_path / "manifest"),
        tasks={**tasks, **overrides.pop("tasks", {})},
        **overrides,
    )
    return EarthEngineSource(settings, project=PROJECT, sleep=sleeps.sleep, clock=sleeps.time)


class SimulatedClock(list):
    """The waits asked for (a list of seconds), on a clock that advances by each of them."""

    now = 0.0

    def sleep(self, seconds: float) -> None:
        self.append(seconds)
        self.now += seconds

    def time(self) -> float:
        return self.now


@pytest.fixture
def sleeps() -> SimulatedClock:
    return SimulatedClock()


@pytest.fixture
def source(bucket: Path, tmp_path: Path, sleeps: SimulatedClock) -> EarthEngineSource:
    return make_source(bucket, tmp_path, sleeps)


def read_all(files: dict[str, Any]) -> dict[str, list[bytes]]:
    return {stem: list(chunk()) for stem, chunk in files.items()}


def test_each_chunk_is_one_task_and_saving_it_brings_its_records(
    points, source, bucket, monkeypatch, sleeps
):
    api = FakeTaskApi(Bucket(bucket)).install(monkeypatch)
    files = source.patch_files(points, REQUEST)
    assert sorted(files) == ["patches-00000", "patches-00001", "patches-00002"]
    assert api.starts == []  # planning starts nothing
    assert source.runs_in == "this_process"  # so writers run its producers here
    records = list(files["patches-00001"]())
    assert len(api.starts) == 3  # within the limit every pending task is started: in parallel
    for _, config in api.starts:
        assert config["selectors"] == ["B2", "NDWI", "label", "point_index"]
        assert config["fileExportOptions"]["fileFormat"] == "TF_RECORD_TABLE"
    assert [decode_example(r)["point_index"][0] for r in records] == [2.0, 3.0]
    assert records == api.on_success.written[destination_prefix(api.starts[1][1])]
    assert list(files["patches-00000"]()) + list(files["patches-00002"]()) == [
        *patch_records(api.starts[0][1]),
        *patch_records(api.starts[2][1]),
    ]
    assert sleeps == [0, 0]  # two rounds: every task RUNNING, then every task done
    # The three exports finished in the same round: their folder was listed once, not thrice.
    assert source.listing.listings == 1


def test_no_more_tasks_live_than_the_limit(points, bucket, tmp_path, monkeypatch, sleeps):
    api = FakeTaskApi(Bucket(bucket)).install(monkeypatch)
    source = make_source(bucket, tmp_path, sleeps, tasks={"max_active_tasks": 2})
    first = read_all(source.patch_files(points, REQUEST))
    assert api.max_live == 2 and source.queue.stats["max_active"] == 2
    assert len(api.starts) == 3 and sum(map(len, first.values())) == 5


def test_refused_starts_wait_a_round_and_keep_their_request_id(
    points, source, bucket, monkeypatch, sleeps
):
    api = FakeTaskApi(Bucket(bucket)).install(monkeypatch)
    api.start_errors = [
        ee.EEException("Too many tasks already in the queue (3000). Please wait."),
        ConnectionError("connection reset"),
    ]
    attempted: list[str] = []
    start = api.start
    monkeypatch.setattr(
        ee.data, "exportTable", lambda rid, cfg: attempted.append(rid) or start(rid, cfg)
    )
    job = source.patch_jobs(points, REQUEST)[0]
    source.queue.add(job)
    (entry,) = source.queue.wait(job.key)
    # Refused twice, then started: one request id, so never a second task, and no attempt used.
    assert attempted == ["TASKID0001"] * 3 and entry["attempts"] == 1
    assert source.queue.stats["refused_starts"] == 2


def test_a_permanent_start_error_stops_with_the_fix(points, source, monkeypatch, sleeps):
    api = FakeTaskApi().install(monkeypatch)
    api.start_errors = [ee.EEException("Image.select: Pattern 'QA60' did not match any bands.")]
    job = source.patch_jobs(points, REQUEST)[0]
    source.queue.add(job)
    with pytest.raises(ExportFailedError, match="QA60.*cloud_score_plus"):
        source.queue.wait(job.key)
    assert sleeps == [] and api.starts == []


def test_failures_are_retried_split_or_stopped_by_kind(points, source, bucket, monkeypatch, sleeps):
    api = FakeTaskApi(Bucket(bucket)).install(monkeypatch)
    # Per start: chunk 0 hits a backend error once; chunk 1 is too big and splits into two
    # single-point parts; chunk 2 asks for too many pixels, which no retry can fix.
    api.outcomes = ["Internal error.", "Computation timed out.", "Too many pixels in the region."]
    files = source.patch_files(points, REQUEST)
    assert [decode_example(r)["point_index"][0] for r in files["patches-00000"]()] == [0.0, 1.0]
    assert [decode_example(r)["point_index"][0] for r in files["patches-00001"]()] == [2.0, 3.0]
    manifest = source.queue.manifest_dir
    entries = {key: read_entry(manifest, key) for key in ("patches-00000", "patches-00001")}
    assert entries["patches-00000"]["attempts"] == 2
    assert entries["patches-00001"]["children"] == ["patches-00001.1", "patches-00001.2"]
    assert 1 in sleeps  # the restart waited backoff_initial_s, with no task to poll meanwhile
    with pytest.raises(ExportFailedError, match="Too many pixels.*make the scene smaller"):
        list(files["patches-00002"]())
    assert source.queue.stats["retries"] == 1 and source.queue.stats["splits"] == 1


def test_a_cancelled_task_is_reported_and_never_restarted(
    points, bucket, tmp_path, monkeypatch, sleeps
):
    api = FakeTaskApi(Bucket(bucket)).install(monkeypatch)
    api.outcomes = ["CANCELLED"]
    source = make_source(bucket, tmp_path, sleeps)
    files = source.patch_files(points, REQUEST)
    with pytest.raises(ExportFailedError, match="cancelled in Earth Engine.*not restarted"):
        list(files["patches-00000"]())
    starts = len(api.starts)
    again = make_source(bucket, tmp_path, sleeps)  # the next run says so too, starting nothing
    with pytest.raises(ExportFailedError, match="cancelled"):
        list(again.patch_files(points, REQUEST)["patches-00000"]())
    assert len(api.starts) == starts


def test_a_rerun_resumes_from_the_manifest(points, bucket, tmp_path, monkeypatch, sleeps):
    api = FakeTaskApi(Bucket(bucket)).install(monkeypatch)
    first = read_all(make_source(bucket, tmp_path, sleeps).patch_files(points, REQUEST))
    assert len(api.starts) == 3
    # A new process: nothing is started again, the same records come back from the bucket.
    again = FakeTaskApi().install(monkeypatch)
    rerun = read_all(make_source(bucket, tmp_path, sleeps).patch_files(points, REQUEST))
    assert rerun == first and again.starts == []
    # A changed request starts afresh, into different files.
    changed = dataclasses.replace(REQUEST, composite=composite_window(end_date="2019-09-01"))
    again.on_success = Bucket(bucket)
    list(make_source(bucket, tmp_path, sleeps).patch_files(points, changed)["patches-00000"]())
    assert len(again.starts) == 3
    assert destination_prefix(again.starts[0][1]) != destination_prefix(api.starts[0][1])


@pytest.mark.parametrize(
    "change", [{"bucket": "other-bucket"}, {"folder": "elsewhere"}, {"project": "other-project"}]
)
def test_another_destination_or_project_exports_afresh(points, bucket, tmp_path, sleeps, change):
    source = make_source(bucket, tmp_path, sleeps)
    project = change.pop("project", PROJECT)
    other = EarthEngineSource(
        earthengine_settings(**{**source.settings.model_dump(), **change}),
        project=project,
    )
    (job,), (moved,) = (s.patch_jobs(points.iloc[:1], REQUEST) for s in (source, other))
    # Not the earlier run's manifest entry: that one's files are somewhere else.
    assert job.fingerprint != moved.fingerprint


def test_an_interrupted_run_follows_its_running_task_instead_of_starting_another(
    points, bucket, tmp_path, monkeypatch, sleeps
):
    api = FakeTaskApi(Bucket(bucket)).install(monkeypatch)
    api.polls_before_done = 3
    source = make_source(bucket, tmp_path, sleeps)
    job = source.patch_jobs(points, REQUEST)[0]
    source.queue.add(job)
    source.queue._fill()  # started, then the process dies
    resumed = make_source(bucket, tmp_path, sleeps)
    resumed.queue.add(job)
    (entry,) = resumed.queue.wait(job.key)
    assert entry["state"] == "COMPLETED" and len(api.starts) == 1
    # A start cut off before Earth Engine answered is repeated with the stored request id.
    stale = dict(entry, state="STARTING", operation=None, request_id="TASKSTORED")
    write_entry(source.queue.manifest_dir, stale)
    restarted = make_source(bucket, tmp_path, sleeps)
    restarted.queue.add(job)
    restarted.queue.wait(job.key)
    assert api.starts[-1][0] == "TASKSTORED"


def test_waiting_gives_up_after_the_time_out_and_says_the_task_goes_on(
    points, bucket, tmp_path, monkeypatch
):
    api = FakeTaskApi().install(monkeypatch)
    api.polls_before_done = 10**6
    ticks = iter(range(0, 10**6, 600))
    settings = earthengine_settings(
        bucket="dams", manifest_dir=str(tmp_path / "manifest"),
        tasks={"poll_interval_s": 0, "timeout_s": 3600},
    )  # fmt: skip
    source = EarthEngineSource(
        settings, project=PROJECT, sleep=lambda s: None, clock=lambda: next(ticks)
    )
    job = source.patch_jobs(points, REQUEST)[0]
    source.queue.add(job)
    with pytest.raises(ExportFailedError, match="next run resumes them"):
        source.queue.wait(job.key)
    assert read_entry(source.queue.manifest_dir, job.key)["state"] == "RUNNING"


def test_a_service_account_cannot_export_to_drive(tmp_path):
    settings = earthengine_settings(
        destination="drive", drive_folder="dams", read_url=str(tmp_path)
    )
    with pytest.raises(ValueError, match="service account's own Drive"):
        EarthEngineSource(settings, project=PROJECT, service_account=True)
    assert EarthEngineSource(settings, project=PROJECT, service_account=False).read_url
