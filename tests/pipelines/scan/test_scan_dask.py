"""Tiles on a real Dask LocalCluster: results in order, a lost worker costs only its tile."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import cloudpickle

from dam_detection.pipelines.scan.cluster import dask_client, physical_cores, run_tasks
from dam_detection.pipelines.scan.settings import ClusterSettings

# Workers import nothing from tests/: send this module's functions by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def _die_once(key: str, markers: str, shared: dict) -> dict:
    """Kill the worker process the first time ``key`` is ``b``; answer otherwise."""
    marker = Path(markers) / f"{key}.died"
    if key == shared["victim"] and not marker.exists():
        marker.write_text(str(os.getpid()))
        os._exit(1)  # the process dies mid-task, as on an out-of-memory kill
    return {"tile_id": key, "pid": os.getpid()}


def test_a_lost_worker_costs_only_its_tile_which_is_redone(tmp_path):
    settings = ClusterSettings(address=None, n_workers=2, threads_per_worker=1,
                               memory_limit="1GiB", retries=0)  # fmt: skip
    keys = ["a", "b", "c", "d"]
    with dask_client(settings) as client:
        assert len(client.scheduler_info()["workers"]) == 2
        results = run_tasks(client, _die_once, [(k, (k, str(tmp_path))) for k in keys],
                            {"victim": "b"}, retries=0)  # fmt: skip
    assert [r["tile_id"] for r in results] == keys
    died = int((tmp_path / "b.died").read_text())
    assert results[1]["pid"] != died  # redone in a fresh worker process


def test_the_local_cluster_defaults_to_one_single_threaded_worker_per_physical_core():
    import psutil

    settings = ClusterSettings(address=None, n_workers=None, threads_per_worker=1,
                               memory_limit="1GiB", retries=0)  # fmt: skip
    with dask_client(settings) as client:
        workers = client.scheduler_info()["workers"].values()
        assert len(workers) == physical_cores() == psutil.cpu_count(logical=False)
        assert all(worker["nthreads"] == 1 for worker in workers)
        # TensorFlow in each worker is told to use its one thread.
        environment = client.run(lambda: os.environ["TF_NUM_INTRAOP_THREADS"])
        assert set(environment.values()) == {"1"}
