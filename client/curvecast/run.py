"""A run: `init` creates it, `log` queues points, `finish` delivers and closes it.

`log` is on the training loop's hot path, so it does the least it can: check the values, copy
them, append a tuple to a deque. No lock, no syscall, no thread wake-up except once per
`flush_rows` rows; the writer thread does the rest (see `_batcher`).
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from curvecast import _spool
from curvecast._batcher import Batcher, Finish
from curvecast._transport import Transport
from curvecast._validate import (
    check_key,
    check_status,
    check_step,
    coerce_value,
    nonfinite,
    run_body,
)
from curvecast.errors import ServerError

log = logging.getLogger("curvecast")

EXIT_TIMEOUT = 10.0  # seconds `finish` may take at interpreter exit or on SIGTERM


@dataclass(frozen=True)
class RunStats:
    """Where every logged row went; `unconfirmed` rows wait in the spool for `curvecast sync`."""

    logged: int
    confirmed: int
    rejected: int
    dropped: int

    @property
    def unconfirmed(self) -> int:
        return self.logged - self.dropped - self.confirmed - self.rejected


class Run:
    """A live run. Make one with `curvecast.init`; log from one thread."""

    def __init__(
        self,
        run_id: str,
        url: str,
        api_key: str,
        session: Path,
        lock_fd: int,
        batcher: Batcher,
        flush_rows: int,
        max_queue: int,
    ) -> None:
        self.id = run_id
        self.url = url
        self._api_key = api_key
        self._session = session
        self._lock_fd = lock_fd
        self._batcher = batcher
        self._queue = batcher.queue
        self._wake = batcher.wake
        self._flush_rows = flush_rows
        self._max_queue = max_queue
        self._pid = os.getpid()  # a forked child inherits the hooks, not the threads
        self._last: dict[str, int] = {}  # key -> last step logged: the order check
        self._step = -1
        self._logged = 0
        self._dropped = 0
        self._finished = False
        self._prev_sigterm: Any = None
        self._hook()

    @property
    def should_stop(self) -> bool:
        """True once the server's stop policy says this run will not beat its reference."""
        return self._batcher.should_stop

    @property
    def stats(self) -> RunStats:
        return RunStats(
            self._logged, self._batcher.confirmed, self._batcher.rejected, self._dropped
        )

    def log(self, values: Mapping[str, float], step: int | None = None) -> None:
        """Queue one row of metrics at `step` (default: one past the largest step so far).

        Never waits for the network. Raises TypeError/ValueError for a non-number, a bad name,
        or a step that is not after the key's previous one; the row is then not logged.
        """
        if self._finished:
            raise RuntimeError(f"run {self.id} is finished; call curvecast.init for a new one")
        if step is None:
            step = self._step + 1
        elif type(step) is not int or not 0 <= step < 2**62:
            step = check_step(step)
        last = self._last
        row = {}
        try:
            items = values.items()
        except AttributeError:
            raise TypeError(f"values must be a dict of name -> number, not {values!r}") from None
        for key, value in items:
            prev = last.get(key)
            if prev is None:
                check_key(key)
            elif step <= prev:
                raise ValueError(f"step {step} for {key!r} is not after its last step {prev}")
            kind = type(value)
            if kind is float:
                if value - value:  # NaN or infinity: only they give a non-zero (NaN)
                    value = nonfinite(value)
            elif kind is not int:
                value = coerce_value(key, value)
            row[key] = value
        if not row:
            raise ValueError("values is empty: log at least one metric")
        last.update(dict.fromkeys(row, step))
        if step > self._step:
            self._step = step
        queue = self._queue
        waiting = len(queue)
        if waiting >= self._max_queue:
            self._drop()
            return
        queue.append((step, row, time.time()))
        self._logged += 1
        if waiting + 1 == self._flush_rows:
            self._wake.set()

    def _drop(self) -> None:
        if not self._dropped:
            log.warning("curvecast: queue full (%d rows); dropping rows", self._max_queue)
        self._logged += 1
        self._dropped += 1

    def forecast(self, key: str) -> dict[str, Any]:
        """The server's stored forecast for metric `key` (API.md's forecast object)."""
        check_key(key)
        transport = Transport(self.url, self._api_key)  # rare calls: no connection to keep
        try:
            return transport.forecast(self.id, key)
        finally:
            transport.close()

    def finish(self, status: str = "finished", timeout: float = 60.0) -> RunStats:
        """Deliver everything logged, then the final status; wait at most `timeout` seconds.

        Rows not confirmed in time stay in the spool (a warning says where) for
        `python -m curvecast sync`. Calling it again returns the same stats.
        """
        check_status(status)
        if self._finished:
            return self.stats
        self._finished = True
        self._unhook()
        self._queue.append(Finish(status))
        self._wake.set()
        self._batcher.ended.wait(timeout)
        delivered = self._batcher.delivered
        stopped = self._batcher.stop(timeout=1.0)
        stats = self.stats
        if delivered:
            _spool.remove(self._session)
        else:
            log.warning(
                "curvecast: run %s: %d rows not confirmed; they are spooled in %s for "
                "`python -m curvecast sync`",
                self.id,
                stats.unconfirmed,
                self._session,
            )
        if stopped:  # a sender still mid-request keeps the lock until the process ends
            _spool.unlock(self._lock_fd)
        return stats

    def __enter__(self) -> Run:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.finish(_status_for(exc_type))

    # -- process exit and SIGTERM --------------------------------------------------------------
    def _hook(self) -> None:
        atexit.register(self._at_exit)
        if threading.current_thread() is threading.main_thread():
            self._prev_sigterm = signal.signal(signal.SIGTERM, self._on_sigterm)

    def _unhook(self) -> None:
        atexit.unregister(self._at_exit)
        main = threading.current_thread() is threading.main_thread()
        if main and signal.getsignal(signal.SIGTERM) == self._on_sigterm:
            signal.signal(signal.SIGTERM, self._prev_sigterm or signal.SIG_DFL)

    def _at_exit(self) -> None:
        if os.getpid() != self._pid:
            return
        # sys.last_type is set when the interpreter reports an uncaught exception.
        self.finish(_status_for(getattr(sys, "last_type", None)), timeout=EXIT_TIMEOUT)

    def _on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        prev = self._prev_sigterm
        if os.getpid() == self._pid:
            self.finish("killed", timeout=EXIT_TIMEOUT)
        if callable(prev):
            prev(signum, frame)
        elif prev != signal.SIG_IGN:  # the default action: die of SIGTERM, as the caller meant
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)


def _status_for(exc_type: type[BaseException] | None) -> str:
    if exc_type is None:
        return "finished"
    return "killed" if issubclass(exc_type, KeyboardInterrupt) else "failed"


def init(
    project: str,
    name: str | None = None,
    *,
    config: Mapping[str, Any] | None = None,
    tags: Sequence[str] | None = None,
    group: str | None = None,
    total_steps: int | None = None,
    lr_schedule: Mapping[str, Any] | None = None,
    params: float | None = None,
    tokens_per_step: float | None = None,
    tokens: float | None = None,
    id: str | None = None,
    url: str | None = None,
    api_key: str | None = None,
    spool_dir: str | os.PathLike[str] | None = None,
    flush_interval: float = 0.2,
    flush_rows: int = 1000,
    max_queue: int = 100_000,
    heartbeat_interval: float = 10.0,
) -> Run:
    """Start (or, with the `id` of an existing run, resume) a run and its background threads.

    The server is `url` or $CURVECAST_URL (default http://127.0.0.1:8000) under `api_key` or
    $CURVECAST_API_KEY. A server that refuses the run (bad key, bad field) raises ServerError
    here; one that cannot be reached does not: the run is created when it answers. Rows reach
    the spool (`spool_dir`, $CURVECAST_SPOOL_DIR, ~/.curvecast/spool) at most `flush_interval`
    seconds or `flush_rows` rows after `log` returns; past `max_queue` rows waiting for the
    spool, rows are dropped and counted. A run that logs nothing for `heartbeat_interval`
    seconds sends a heartbeat, which also refreshes `should_stop`.
    """
    url = url or os.environ.get("CURVECAST_URL") or "http://127.0.0.1:8000"
    api_key = api_key or os.environ.get("CURVECAST_API_KEY")
    if not api_key:
        raise ValueError("no API key: pass api_key= or set CURVECAST_API_KEY")
    if not (flush_interval > 0 and flush_rows >= 1 and max_queue >= flush_rows):
        raise ValueError("need flush_interval > 0 and 1 <= flush_rows <= max_queue")
    run_id = uuid.uuid4().hex if id is None else id
    body = run_body(
        {
            "project": project,
            "name": name,
            "group": group,
            "tags": tags,
            "config": config,
            "total_steps": total_steps,
            "lr_schedule": lr_schedule,
            "params": params,
            "tokens_per_step": tokens_per_step,
            "tokens": tokens,
            "id": run_id,
        }
    )
    session = _spool.new_session(Path(spool_dir or _spool.default_dir()).expanduser(), run_id, url)
    lock_fd = _spool.lock(session)
    batcher = Batcher(
        run_id,
        session,
        Transport(url, api_key),
        flush_interval=flush_interval,
        flush_rows=flush_rows,
        heartbeat_interval=heartbeat_interval,
    )
    try:
        created = batcher.create(body)
    except ServerError:
        _spool.unlock(lock_fd)
        _spool.remove(session)
        raise
    if not created:
        log.warning(
            "curvecast: %s is unreachable; run %s will be created when it answers (spooling to %s)",
            url,
            run_id,
            session,
        )
    batcher.start()
    return Run(run_id, url, api_key, session, lock_fd, batcher, flush_rows, max_queue)
