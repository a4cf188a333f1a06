"""Run scan tiles on Dask: a LocalCluster sized to the machine, or an existing cluster.

Each tile is one task. The settings every tile shares (the model above all) are scattered to
the workers once; each task returns a small summary, so memory per worker stays flat however
many tiles a region has. A worker that dies costs only the tasks it held: the scheduler
reschedules them on the others (up to ``retries`` more times for a task that fails).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from dam_detection.pipelines.scan.settings import ClusterSettings
from dam_detection.progress import Progress

logger = logging.getLogger(__name__)


def physical_cores() -> int:
    """Physical CPU cores (hyper-threads do not double TensorFlow's convolutions)."""
    import psutil

    return int(psutil.cpu_count(logical=False) or os.cpu_count() or 1)


def worker_environment(threads: int) -> dict[str, str]:
    """Environment of each LocalCluster worker: TensorFlow and OpenMP use its threads only."""
    return {
        "TF_NUM_INTRAOP_THREADS": str(threads),
        "TF_NUM_INTEROP_THREADS": "1",
        "OMP_NUM_THREADS": str(threads),
        "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
        "DO_NOT_TRACK": "1",
    }


@contextmanager
def dask_client(settings: ClusterSettings) -> Iterator[Any]:
    """A Dask client: on ``settings.address`` if set, else on a new LocalCluster of processes.

    The LocalCluster has ``n_workers`` workers (default: one per physical core) of
    ``threads_per_worker`` threads each, no dashboard, and is closed on exit.
    """
    from dask.distributed import Client, LocalCluster

    if settings.address:
        with Client(settings.address) as client:
            logger.info("scan: on the Dask cluster at %s", settings.address)
            yield client
        return
    workers = settings.n_workers or physical_cores()
    threads = settings.threads_per_worker
    with (
        LocalCluster(
            n_workers=workers,
            threads_per_worker=threads,
            processes=True,
            memory_limit=settings.memory_limit,
            dashboard_address=None,
            env=worker_environment(threads),
        ) as cluster,
        Client(cluster) as client,
    ):
        # Every worker up before the tiles are handed out, so they spread over all of them.
        client.wait_for_workers(workers)
        logger.info("scan: LocalCluster of %d workers x %d threads", workers, threads)
        yield client


def _shared(value: Any) -> Any:
    return value


def run_tasks(
    client: Any,
    function: Callable[..., dict[str, Any]],
    tasks: Sequence[tuple[str, tuple[Any, ...]]],
    shared: Any,
    *,
    retries: int,
    label: str = "scan",
    on_result: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Run ``function(*args, shared)`` for every ``(key, args)`` of ``tasks`` on the cluster.

    Args:
        client: A Dask client.
        function: Returns a small summary dict.
        tasks: Unique keys (tile ids) and their arguments.
        shared: Sent to the cluster once (as a task's result, so a lost copy is recomputed),
            passed as the last argument.
        retries: Extra attempts of a task that raises.
        label: Progress label.
        on_result: Called with each summary as it arrives.

    Returns:
        The summaries in the order of ``tasks``.

    Raises:
        Exception: The first task error after its retries; the other tasks are cancelled.
    """
    from dask.distributed import as_completed

    if not tasks:
        return []
    # The shared job is the result of a task, not scattered data: Dask keeps a task's recipe
    # and recomputes its result when the worker holding it dies, while scattered data that
    # loses its last copy (the memory manager trims broadcast copies) is gone with the job.
    shared_future = client.submit(_shared, shared, pure=False)
    futures = {
        client.submit(
            function, *args, shared_future, key=f"{label}-{key}", pure=False, retries=retries
        ): key  # fmt: skip
        for key, args in tasks
    }
    results: dict[str, dict[str, Any]] = {}
    progress = Progress(logger, label, len(tasks), "tiles")
    try:
        for future in as_completed(futures):
            result = future.result()
            results[futures[future]] = result
            if on_result is not None:
                on_result(result)
            progress.update(1)
    finally:
        client.cancel(list(futures))
    return [results[key] for key, _ in tasks]
