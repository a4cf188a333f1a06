"""Starting, following, retrying and resuming export tasks, against a fake batch API."""

from __future__ import annotations

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
from dam_detection.image_sources.earthengine import tasks as ee_tasks
from dam_detection.tfrecord_codec import decode_example, encode_example, frame_record
from tests.image_sources.earthengine.conftest import FakeTaskApi, destination_prefix
from tests.image_sources.earthengine.ee_graph import constant, invocations

pytestmark = pytest.mark.usefixtures("ee_offline")
RADIUS = 2
REQUEST = PatchRequest(bands=("B2", "NDWI"), radius=RADIUS, points_per_file=2)


def patch_records(config: dict[str, Any]) -> list[bytes]:
    """What Earth Engine would export for the points in a table-export request."""
    records = []
    for metadata in (constant(a["metadata"]) for a in invocations(config["expression"], "Feature")):
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


@pytest.fixture
def source(bucket: Path, tmp_path: Path) -> EarthEngineSource:
    return EarthEngineSource(
        bucket="dams",
        folder="exports",
        read_url=bucket.as_uri(),
        manifest_dir=str(tmp_path / "manifest"),
        tasks={"poll_interval_s": 0, "backoff_initial_s": 1, "backoff_max_s": 4},
    )


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    waits: list[float] = []
    monkeypatch.setattr(ee_tasks.time, "sleep", waits.append)
    return waits


def test_each_chunk_is_one_task_and_saving_it_brings_its_records(
    points, source, bucket, monkeypatch, sleeps
):
    api = FakeTaskApi(Bucket(bucket)).install(monkeypatch)
    files = source.patch_files(points, REQUEST)
    assert sorted(files) == ["patches-00000", "patches-00001", "patches-00002"]
    assert api.starts == []  # planning starts nothing
    assert source.runs_in == "this_process"  # so writers run its producers here
    records = list(files["patches-00001"]())
    assert len(api.starts) == 3  # every pending task is submitted, so they run in parallel
    for _, config in api.starts:
        assert config["selectors"] == ["B2", "NDWI", "label", "point_index"]
        assert config["fileExportOptions"]["fileFormat"] == "TF_RECORD_TABLE"
    assert [decode_example(r)["point_index"][0] for r in records] == [2.0, 3.0]
    assert records == api.on_success.written[destination_prefix(api.starts[1][1])]
    assert list(files["patches-00000"]()) + list(files["patches-00002"]()) == [
        *patch_records(api.starts[0][1]),
        *patch_records(api.starts[2][1]),
    ]
    assert len(api.starts) == 3 and sleeps == [0, 0, 0]  # one RUNNING poll per task


def test_transient_start_failures_are_retried_with_backoff_and_the_same_request_id(
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
    ee_tasks.follow(job, source.manifest_dir, source.policy)
    assert attempted == ["TASKID0001"] * 3
    assert sleeps == [1, 2, 0]  # back-off doubles, then one status poll


def test_a_permanent_start_error_is_raised_at_once(points, source, monkeypatch, sleeps):
    api = FakeTaskApi().install(monkeypatch)
    api.start_errors = [ee.EEException("Image.select: Pattern 'B99' did not match any bands.")]
    job = source.patch_jobs(points, REQUEST)[0]
    with pytest.raises(ee.EEException, match="B99"):
        ee_tasks.follow(job, source.manifest_dir, source.policy)
    assert sleeps == []


def test_failed_tasks_restart_when_transient_and_stop_when_permanent(
    points, source, bucket, monkeypatch, sleeps
):
    api = FakeTaskApi(Bucket(bucket)).install(monkeypatch)
    api.outcomes = ["Internal error.", "SUCCEEDED", "User memory limit exceeded."]
    jobs = source.patch_jobs(points, REQUEST)
    entry = ee_tasks.follow(jobs[0], source.manifest_dir, source.policy)
    assert [rid for rid, _ in api.starts] == ["TASKID0001", "TASKID0002"]
    assert entry["state"] == "COMPLETED" and entry["attempts"] == 2
    with pytest.raises(ee_tasks.ExportFailedError, match="User memory limit exceeded"):
        ee_tasks.follow(jobs[1], source.manifest_dir, source.policy)
    assert ee_tasks.read_entry(source.manifest_dir, jobs[1].key)["state"] == "FAILED"


def test_a_rerun_resumes_from_the_manifest(points, source, bucket, monkeypatch, sleeps):
    api = FakeTaskApi(Bucket(bucket)).install(monkeypatch)
    first = {stem: list(chunk()) for stem, chunk in source.patch_files(points, REQUEST).items()}
    assert len(api.starts) == 3
    # A new process: nothing is started again, the same records come back from the bucket.
    again = FakeTaskApi().install(monkeypatch)
    rerun = {stem: list(chunk()) for stem, chunk in source.patch_files(points, REQUEST).items()}
    assert rerun == first and again.starts == []
    # A changed request starts afresh, into different files.
    changed = PatchRequest(
        bands=("B2", "NDWI"), radius=RADIUS, points_per_file=2, end_date="2019-09-01"
    )
    again.on_success = Bucket(bucket)
    list(source.patch_files(points, changed)["patches-00000"]())
    assert len(again.starts) == 3
    assert destination_prefix(again.starts[0][1]) != destination_prefix(api.starts[0][1])


def test_an_interrupted_run_follows_its_running_task_instead_of_starting_another(
    points, source, bucket, monkeypatch, sleeps
):
    api = FakeTaskApi(Bucket(bucket)).install(monkeypatch)
    api.polls_before_done = 3
    job = source.patch_jobs(points, REQUEST)[0]
    ee_tasks.submit(job, source.manifest_dir, source.policy)  # then the process dies
    entry = ee_tasks.follow(job, source.manifest_dir, source.policy)
    assert entry["state"] == "COMPLETED" and len(api.starts) == 1
    # A start cut off before Earth Engine answered is repeated with the stored request id.
    stale = dict(entry, state="STARTING", operation=None, request_id="TASKSTORED")
    ee_tasks.write_entry(source.manifest_dir, stale)
    ee_tasks.submit(job, source.manifest_dir, source.policy)
    assert api.starts[-1][0] == "TASKSTORED"


def test_following_gives_up_after_the_time_out_and_says_the_task_goes_on(
    points, source, monkeypatch, sleeps
):
    api = FakeTaskApi().install(monkeypatch)
    api.polls_before_done = 10**6
    ticks = iter(range(0, 10**6, 600))
    policy = ee_tasks.TaskPolicy(poll_interval_s=0, timeout_s=3600)
    job = source.patch_jobs(points, REQUEST)[0]
    with pytest.raises(ee_tasks.ExportFailedError, match="next run resumes it"):
        ee_tasks.follow(job, source.manifest_dir, policy, clock=lambda: next(ticks))
    assert ee_tasks.read_entry(source.manifest_dir, job.key)["state"] == "RUNNING"


@pytest.mark.parametrize(
    ("message", "transient"),
    [
        ("Too many tasks already in the queue (3000).", True),
        ("HttpError 503 backend", True),
        ("Computation timed out.", True),
        ("User memory limit exceeded.", False),
        ("Collection query aborted after accumulating over 5000 elements.", False),
    ],
)
def test_transient_errors_are_told_apart(message, transient):
    assert ee_tasks.is_transient(message) is transient
