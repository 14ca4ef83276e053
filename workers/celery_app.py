"""The Celery app, built from settings (never at import time): task routes and beat schedule."""

import tempfile
from pathlib import Path

from celery import Celery
from celery.signals import worker_process_init

from backend.jobs import DELIVER_ALERT, FIT_SCALING, FORECAST_SERIES, SWEEP
from backend.settings import Settings
from workers import delivery, scaling_tasks, tasks
from workers.forecast import memo
from workers.shared_memo import RedisStore


class _CelerySender:
    """Lets a running task enqueue follow-up work through its own app."""

    def __init__(self, app: Celery) -> None:
        self._app = app

    def send(self, task: str, *args: str | int) -> None:
        self._app.send_task(task, args=list(args))


def make_celery(settings: Settings) -> Celery:
    app = Celery("curvecast", broker=settings.broker_url)
    app.conf.update(
        # A job is acknowledged only after it ran: a worker killed mid-fit leaves it queued.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        beat_schedule={"sweep": {"task": SWEEP, "schedule": settings.sweep_every_s}},
        # Beat's small state file goes to the temp dir, not wherever the worker was started.
        beat_schedule_filename=str(Path(tempfile.gettempdir()) / "curvecast-celerybeat"),
    )
    sender = _CelerySender(app)

    if settings.broker_url.startswith(("redis://", "rediss://")):
        @worker_process_init.connect(weak=False)
        def share_memos(**_: object) -> None:
            """Each pool process shares its forecast memos with the others through the
            broker's Redis (workers.shared_memo)."""
            memo.share_through(RedisStore(settings.broker_url))

    @app.task(name=FORECAST_SERIES)
    def forecast_series(run_id: str, key: str, replaying: int = 0) -> str:
        return tasks.forecast_series(settings, sender, run_id, key, replaying)

    @app.task(name=DELIVER_ALERT)
    def deliver_alert(alert_id: int) -> str:
        return delivery.deliver_alert(settings, alert_id)

    @app.task(name=FIT_SCALING)
    def fit_scaling(fit_id: int) -> str:
        return scaling_tasks.fit_scaling_job(settings, sender, fit_id)

    @app.task(name=SWEEP)
    def sweep() -> dict[str, int]:
        return tasks.sweep(settings, sender)

    return app
