"""Where a job's fits run: where they are called, or in one child process of the API's own.

A Celery worker is a process of its own, so its fits run where they are called. The embedded
mode (`curvecast up`) runs its jobs on a thread of the API process, where a fit holds the GIL:
every request waits on the fit and every request (the dashboard's polls) slows it. So the
embedded server hands the fits to one spawned child process (`in_child_process`); the child is
reused from job to job, so the forecast memos (trajectory, transfer) stay warm in it.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.connection import wait
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")

log = logging.getLogger("curvecast.worker")

_pool: ProcessPoolExecutor | None = None
_lock = threading.Lock()


def in_child_process() -> None:
    """From now on, run this process's fits in a child process, started (and its science
    imported) now, while the server starts."""
    global _pool
    with _lock:
        if _pool is None:
            _pool = _new_pool()


def in_this_process() -> None:
    """Run the fits where they are called again, and stop the child (it ends its fit)."""
    global _pool
    with _lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=True)


def call(fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """``fn(*args, **kwargs)``, in the child process where there is one. A child that died
    (killed, out of memory) is replaced and the call made once more, in the new one."""
    pool = _pool
    if pool is None:
        return fn(*args, **kwargs)
    try:
        return pool.submit(fn, *args, **kwargs).result()
    except BrokenProcessPool:
        log.warning("the fitting process died; starting another and fitting again there")
        return _replaced(pool).submit(fn, *args, **kwargs).result()


def _new_pool() -> ProcessPoolExecutor:
    # Spawned, not forked: a fork of the threaded API process can copy a lock held by
    # another thread, and the child needs none of the server.
    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_child_setup)
    pool.submit(int)  # start the child now rather than on the first fit
    return pool


def _replaced(broken: ProcessPoolExecutor) -> ProcessPoolExecutor:
    global _pool
    with _lock:
        if _pool is broken or _pool is None:
            broken.shutdown(wait=False)
            _pool = _new_pool()
        return _pool


def _child_setup() -> None:
    """Import the science before the first fit, and end with the parent: a server killed
    outright (SIGKILL) cannot stop its child, which would otherwise wait for work forever."""
    import workers.forecast.scaling  # noqa: F401
    import workers.forecast.scaling_hparams  # noqa: F401
    import workers.forecast.stopping  # noqa: F401

    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_exit_with, args=(parent.sentinel,), daemon=True).start()


def _exit_with(parent_sentinel: int) -> None:
    wait([parent_sentinel])
    os._exit(0)
