"""Worker processes stop with the run: within seconds on Ctrl-C, and when their parent dies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from dam_detection.image_sources.simulated import patches
from dam_detection.workers import stop_pool


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by a dead parent's init) counts as gone.
    with open(f"/proc/{pid}/stat") as handle:
        return handle.read().split()[2] != "Z"


def test_a_pool_stops_within_seconds_even_when_terminate_would_hang():
    pool = patches._pool(2)
    busy = pool.apply_async(time.sleep, (60,))  # a worker in the middle of a long render
    workers = list(pool._pool)
    release = threading.Event()
    pool.terminate = release.wait  # the intermittent hang, made certain
    started = time.monotonic()
    try:
        patches._POOLS.clear()
        stop_pool(pool, timeout_s=2.0)
    finally:
        release.set()
    assert time.monotonic() - started < 8
    assert not any(worker.is_alive() for worker in workers)
    assert not busy.ready()  # the render was abandoned, not waited for
    assert not pool._terminate.still_active()  # and interpreter exit will not wait for it


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_workers_do_not_outlive_a_killed_parent(tmp_path):
    script = textwrap.dedent(
        """
        import os, signal, sys, time
        from dam_detection.image_sources.simulated import patches
        pool = patches._pool(2)
        pool.apply_async(time.sleep, (60,))
        time.sleep(1.0)
        print(" ".join(str(worker.pid) for worker in pool._pool), flush=True)
        os.kill(os.getpid(), signal.SIGKILL)  # as a user's kill -9, or a lost machine
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == -signal.SIGKILL
    pids = [int(pid) for pid in result.stdout.split()]
    assert len(pids) == 2
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in pids)
