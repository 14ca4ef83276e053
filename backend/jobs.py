"""The only way work is enqueued: after the transaction commits, by task name, with ids only.

A request that fails or rolls back enqueues nothing. If dispatch itself fails (the broker is
down), the request has already committed its data and the job is recovered later by the sweep,
which re-enqueues forecast requests that never produced a result.
"""

import logging
import queue
import threading
from collections.abc import Callable
from typing import Protocol

from sqlalchemy import event
from sqlalchemy.orm import Session

log = logging.getLogger("curvecast.jobs")

FORECAST_SERIES = "curvecast.forecast_series"
SWEEP = "curvecast.sweep"
DELIVER_ALERT = "curvecast.deliver_alert"
FIT_SCALING = "curvecast.fit_scaling"


class Dispatcher(Protocol):
    def send(self, task: str, *args: str | int) -> None: ...


class CeleryDispatcher:
    """Publishes to the Celery broker by task name, so the API never imports worker code."""

    def __init__(self, broker_url: str) -> None:
        from celery import Celery  # the API needs only the publishing half of Celery

        self._celery = Celery(
            "curvecast-api",
            broker=broker_url,
            broker_transport_options={"socket_connect_timeout": 2, "socket_timeout": 5},
        )

    def send(self, task: str, *args: str | int) -> None:
        self._celery.send_task(task, args=list(args), retry=False)


class InProcessDispatcher:
    """The embedded default: one background thread runs jobs in the API process, in order.

    Duplicate (task, args) already waiting are dropped: the job reads the latest data anyway.
    """

    def __init__(self) -> None:
        self._handlers: dict[str, Callable[..., object]] = {}
        self._queue: queue.Queue[tuple[str, tuple] | None] = queue.Queue()
        self._waiting: set[tuple[str, tuple]] = set()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="curvecast-jobs", daemon=True)

    def start(self, handlers: dict[str, Callable[..., object]]) -> None:
        """Begin running jobs; the handlers may themselves send follow-up jobs here."""
        self._handlers = handlers
        self._thread.start()

    def send(self, task: str, *args: str | int) -> None:
        item = (task, args)
        with self._lock:
            if item in self._waiting:
                return
            self._waiting.add(item)
        self._queue.put(item)

    def close(self, timeout: float = 10.0) -> None:
        self._queue.put(None)
        self._thread.join(timeout)

    def _loop(self) -> None:
        while (item := self._queue.get()) is not None:
            with self._lock:
                self._waiting.discard(item)
            task, args = item
            try:
                self._handlers[task](*args)
            except Exception:
                log.exception("in-process job %s%r failed", task, args)


def enqueue_after_commit(session: Session, dispatcher: Dispatcher, task: str, *args) -> None:
    """Send `task(*args)` once `session` commits; forget it if the session rolls back."""
    session.info.setdefault("curvecast_jobs", []).append((dispatcher, task, args))


@event.listens_for(Session, "after_commit")
def _dispatch_after_commit(session: Session) -> None:
    for dispatcher, task, args in session.info.pop("curvecast_jobs", []):
        try:
            dispatcher.send(task, *args)
        except Exception:
            log.exception("could not enqueue %s%r; the sweep will retry it", task, args)


@event.listens_for(Session, "after_soft_rollback")
def _drop_on_rollback(session: Session, _previous) -> None:
    session.info.pop("curvecast_jobs", None)
