"""Waiting for something asynchronous (a job, a worker, a server) in tests, in one place.

Jobs, workers and servers here are real, so a test polls the public API until it shows the
outcome, with a deadline whose message says what never happened.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import httpx

T = TypeVar("T")


def poll(fetch: Callable[[], T], done: Callable[[T], bool], timeout: float, what: str,
         every: float = 0.2) -> T:
    """Call ``fetch`` until ``done`` holds for its value, and return that value; fail with
    ``what`` (and the last value) once ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if done(value):
            return value
        assert time.monotonic() < deadline, f"{what} within {timeout} s (last: {value!r})"
        time.sleep(every)


def wait_until(predicate: Callable[[], object], timeout: float, what: str,
               every: float = 0.2) -> None:
    """Wait until ``predicate()`` is true."""
    poll(predicate, bool, timeout, what, every)


def wait_healthy(base: str, timeout: float, proc: subprocess.Popen | None = None,
                 log: Path | None = None) -> dict:
    """The health answer of the server at ``base`` once it gives one; fails at once, with
    its log, if ``proc`` (the server) exits first."""
    def health() -> dict | None:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the server exited ({proc.returncode}):\n{_text(log)}")
        try:
            answer = httpx.get(f"{base}/api/v1/health", timeout=1)
        except httpx.TransportError:
            return None
        return answer.json() if answer.status_code == 200 else None

    try:
        return poll(health, lambda h: h is not None, timeout, f"{base} not healthy", every=0.1)
    except AssertionError as exc:
        if proc is not None and proc.poll() is not None:
            raise  # it exited: the message has the log already
        raise AssertionError(f"{exc}\n{_text(log)}") from None


def _text(log: Path | None) -> str:
    return log.read_text() if log is not None and log.exists() else ""
