"""Worker processes that stop with the run: on Ctrl-C within seconds, and with their parent.

Rendering and writing fan out to process pools. Two things must never happen: a first Ctrl-C
that waits forever in ``Pool.terminate()`` (its result-handler thread can be stuck on a lock the
interrupted main thread held), and workers that keep running after their parent was killed.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import multiprocessing.pool
import signal
import sys
import threading
from collections.abc import Iterable
from typing import Any

#: Seconds to wait for workers to exit before giving up on them.
STOP_TIMEOUT_S = 5.0
#: ``prctl`` option: a signal the kernel sends this process when its parent dies (Linux).
_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Ask the kernel to kill this process when its parent dies (a pool initializer).

    Linux only; elsewhere workers notice the parent's end when their pipes close.
    """
    if not sys.platform.startswith("linux"):
        return
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(libc_name, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def stop_processes(processes: Iterable[Any], timeout_s: float = STOP_TIMEOUT_S) -> None:
    """Kill worker processes and wait for them, at most ``timeout_s`` in all.

    Workers only render and write files that are renamed into place when complete, so killing
    them loses nothing that a re-run would not redo.
    """
    processes = [process for process in processes if process.is_alive()]
    for process in processes:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            process.kill()
    for process in processes:
        with contextlib.suppress(OSError, ValueError, AssertionError):
            process.join(timeout_s / max(len(processes), 1))


def stop_pool(pool: Any, timeout_s: float = STOP_TIMEOUT_S) -> None:
    """Stop a ``multiprocessing.Pool`` within about ``timeout_s``, even if ``terminate`` hangs.

    The pool's own ``terminate`` runs first, in a daemon thread. It can hang for good: a worker
    interrupted while holding the task queue's lock leaves that lock taken, and ``terminate``
    waits for it. If it has not finished in time, the workers are killed and the pool's exit
    clean-up is cancelled (it would wait for the same lock when the interpreter exits); the
    stuck thread is abandoned.
    """
    workers = list(getattr(pool, "_pool", []))
    finalizer = getattr(pool, "_terminate", None)  # multiprocessing.util.Finalize
    cleanup = threading.Thread(target=pool.terminate, name="pool-terminate", daemon=True)
    cleanup.start()
    cleanup.join(timeout_s)
    if cleanup.is_alive():
        # The pool's worker handler would start new workers for the killed ones.
        handler = getattr(pool, "_worker_handler", None)
        if handler is not None:
            handler._state = multiprocessing.pool.TERMINATE
        stop_processes(workers, timeout_s)
        if finalizer is not None:
            finalizer.cancel()


def stop_executor(executor: Any, timeout_s: float = STOP_TIMEOUT_S) -> None:
    """Stop a ``ProcessPoolExecutor`` within ``timeout_s``: cancel what has not started, kill
    the workers.
    """
    processes = list((getattr(executor, "_processes", None) or {}).values())
    executor.shutdown(wait=False, cancel_futures=True)
    stop_processes(processes, timeout_s)
