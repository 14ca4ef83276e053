"""A run entering a new 5% progress step is forecast at once with its finished runs replayed as
at an earlier step, or not calibrated where none was (provisional), and then in full by a job
that follows at once; the request stays pending between the two, so no batch waits on a lost
final forecast. Only the final forecast decides a stop."""

import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import select

from backend.db import session_scope
from backend.jobs import FORECAST_SERIES
from backend.models import Series
from backend.settings import Settings
from tests.conftest import held_app
from tests.waiting import poll
from tests.workers.test_celery_worker import start_worker, stop
from workers import tasks
from workers.forecast import trajectory

TOTAL = 1000
SCHEDULE = {"type": "cosine", "peak_lr": 1e-3, "warmup_steps": 50, "total_steps": TOTAL,
            "final_lr": 1e-4}


class RecordingDispatcher:
    """Runs nothing; keeps what a job sent."""

    def __init__(self) -> None:
        self.sent: list[tuple] = []

    def send(self, task: str, *args: str | int) -> None:
        self.sent.append((task, *args))


@pytest.fixture
def held(settings: Settings) -> Iterator[TestClient]:
    with held_app(settings) as client:
        yield client


def _loss(step: int, floor: float) -> float:
    return floor + 3.0 * (step + 10) ** -0.3


def _log(client: TestClient, run_id: str, start: int, stop_: int, floor: float) -> None:
    rows = [{"step": s, "values": {"loss": _loss(s, floor)}} for s in range(start, stop_, 10)]
    r = client.post(f"/api/v1/runs/{run_id}/metrics", json={"rows": rows})
    assert r.status_code == 200, r.text


def _run(client: TestClient, project: str, floor: float, upto: int, finish: bool) -> str:
    run_id = client.post("/api/v1/runs", json={
        "project": project, "name": f"r{floor}-{uuid.uuid4().hex[:6]}", "total_steps": TOTAL,
        "lr_schedule": SCHEDULE}).json()["id"]
    _log(client, run_id, 0, upto, floor)
    if finish:
        client.patch(f"/api/v1/runs/{run_id}", json={"status": "finished"})
    return run_id


def _requested_at(settings: Settings, run_id: str) -> datetime | None:
    with session_scope(settings.database_url) as s:
        return s.scalar(select(Series.forecast_requested_at).where(
            Series.run_id == run_id, Series.key == "loss"))


def _pending(settings: Settings, run_id: str) -> bool:
    return _requested_at(settings, run_id) is not None


def _first_forecasts(held: TestClient, settings: Settings, sent: RecordingDispatcher,
                     run_id: str) -> dict:
    """The run's first forecast beside finished runs: shown before any of their replays is
    made (provisional, not calibrated), then final once a replaying job made them; the final
    forecast's body."""
    assert tasks.forecast_series(settings, sent, run_id, "loss") == "provisional"
    body = held.get(f"/api/v1/runs/{run_id}/forecast/loss").json()
    assert body["provisional"] and "calibrated on" not in body["prior"]
    assert "the finished runs' replays that calibrate it are not made yet" in body["prior"]
    assert tasks.forecast_series(settings, sent, run_id, "loss", 1) == "stored"
    final = held.get(f"/api/v1/runs/{run_id}/forecast/loss").json()
    assert not final["provisional"] and "calibrated on" in final["prior"]
    assert not _pending(settings, run_id) and sent.sent == [(FORECAST_SERIES, run_id, "loss", 1)]
    sent.sent.clear()
    return final


def test_a_new_progress_step_is_forecast_provisionally_then_in_full(held, settings, project):
    for floor in (2.0, 2.1, 2.2, 2.3):
        _run(held, project, floor, TOTAL, finish=True)
    run_id = _run(held, project, 2.15, 430, finish=False)
    sent = RecordingDispatcher()
    _first_forecasts(held, settings, sent, run_id)

    _log(held, run_id, 430, 480, 2.15)  # into the 45% step
    asked = _requested_at(settings, run_id)
    assert tasks.forecast_series(settings, sent, run_id, "loss") == "provisional"
    body = held.get(f"/api/v1/runs/{run_id}/forecast/loss").json()
    assert body["fitted_upto_step"] == 470 and body["status"] == "ready"
    assert body["provisional"] is True
    assert "provisional: the finished runs chosen and replayed as at 40%" in body["prior"]
    # The final forecast is on its way: the request stays pending, renewed (a live chain,
    # which the sweep must not take for lost).
    assert _requested_at(settings, run_id) > asked
    assert sent.sent == [(FORECAST_SERIES, run_id, "loss", 1)]

    # With no new points, the replaying job makes the new step's fits and then the final
    # forecast.
    assert tasks.forecast_series(settings, sent, run_id, "loss", 1) == "stored"
    assert len(sent.sent) == 1
    final = held.get(f"/api/v1/runs/{run_id}/forecast/loss").json()
    assert final["fitted_upto_step"] == 470 and final["provisional"] is False
    assert "provisional" not in final["prior"]
    assert "calibrated on" in final["prior"] and not _pending(settings, run_id)
    # Within the step the replays are at hand: the next batch is forecast in full at once.
    _log(held, run_id, 480, 490, 2.15)
    assert tasks.forecast_series(settings, sent, run_id, "loss") == "stored"
    assert len(sent.sent) == 1


def test_a_run_whose_batches_outrun_its_replays_is_forecast_in_full(held, settings, project):
    for floor in (2.0, 2.1, 2.2, 2.3):
        _run(held, project, floor, TOTAL, finish=True)
    run_id = _run(held, project, 2.15, 430, finish=False)
    sent = RecordingDispatcher()
    assert tasks.forecast_series(settings, sent, run_id, "loss") == "provisional"
    # Its batches come before any replay is made (the replaying jobs sent are never run
    # here): up to LEAN_STEPS steps past the 40% step of that first provisional forecast,
    # each is shown provisionally, not calibrated.
    upto = 420 + trajectory.LEAN_STEPS * 50
    _log(held, run_id, 430, upto + 10, 2.15)
    assert tasks.forecast_series(settings, sent, run_id, "loss") == "provisional"
    body = held.get(f"/api/v1/runs/{run_id}/forecast/loss").json()
    assert body["fitted_upto_step"] == upto and "are not made yet" in body["prior"]
    # One step further, the forecast is made in full: a final forecast, which decides a stop.
    _log(held, run_id, upto + 10, upto + 60, 2.15)
    assert tasks.forecast_series(settings, sent, run_id, "loss") == "stored"
    body = held.get(f"/api/v1/runs/{run_id}/forecast/loss").json()
    assert body["fitted_upto_step"] == upto + 50 and not body["provisional"]
    assert "calibrated on" in body["prior"] and not _pending(settings, run_id)


def test_a_stop_is_decided_on_the_final_forecast_not_the_provisional_one(held, settings,
                                                                         project):
    for floor in (2.0, 2.1, 2.2, 2.3):
        _run(held, project, floor, TOTAL, finish=True)
    policy = held.put(f"/api/v1/projects/{project}/stop-policy", json={
        "metric": "loss", "mode": "min", "reference": "best_finished", "threshold": 0.9,
        "min_progress": 0.45})
    assert policy.status_code == 200, policy.text
    run_id = _run(held, project, 2.6, 430, finish=False)  # far worse than the best, 2.0
    sent = RecordingDispatcher()
    first = _first_forecasts(held, settings, sent, run_id)
    assert first["p_underperform"] > 0.9 and not first["should_stop"]  # at 42%: too soon
    _log(held, run_id, 430, 480, 2.6)
    assert tasks.forecast_series(settings, sent, run_id, "loss") == "provisional"
    body = held.get(f"/api/v1/runs/{run_id}/forecast/loss").json()
    # The last final forecast's decision stands, and with it its p.
    assert body["provisional"] and body["fitted_upto_step"] == 470
    assert (body["p_underperform"], body["should_stop"]) == (first["p_underperform"], False)
    assert not held.get(f"/api/v1/runs/{run_id}").json()["should_stop"]
    assert tasks.forecast_series(settings, sent, run_id, "loss", 1) == "stored"
    final = held.get(f"/api/v1/runs/{run_id}/forecast/loss").json()
    assert not final["provisional"] and final["p_underperform"] > 0.9 and final["should_stop"]
    assert held.get(f"/api/v1/runs/{run_id}").json()["should_stop"]


def test_a_batch_that_comes_while_replaying_is_shown_after_one_more_fit(
        held, settings, project, monkeypatch):
    for floor in (2.0, 2.1, 2.2, 2.3):
        _run(held, project, floor, TOTAL, finish=True)
    run_id = _run(held, project, 2.15, 430, finish=False)
    sent = RecordingDispatcher()
    _first_forecasts(held, settings, sent, run_id)
    _log(held, run_id, 430, 480, 2.15)
    assert tasks.forecast_series(settings, sent, run_id, "loss") == "provisional"

    made = []
    replay_ahead = trajectory.replay_ahead

    def one_fit_then_a_batch(*args, **kwargs) -> bool:
        made.append(replay_ahead(*args, **kwargs))
        if len(made) == 1:
            _log(held, run_id, 480, 490, 2.15)  # a batch comes while the first fit is made
        return made[-1]

    monkeypatch.setattr(tasks, "replay_ahead", one_fit_then_a_batch)
    assert tasks.forecast_series(settings, sent, run_id, "loss", 1) == "replaying"
    assert made == [False]  # it stopped after that fit
    # The next job shows the batch first (provisionally), then makes one more fit.
    assert tasks.forecast_series(settings, sent, run_id, "loss", 1) == "provisional"
    assert made == [False, False]
    body = held.get(f"/api/v1/runs/{run_id}/forecast/loss").json()
    assert body["fitted_upto_step"] == 480 and "provisional" in body["prior"]
    assert _pending(settings, run_id)
    assert tasks.forecast_series(settings, sent, run_id, "loss", 1) == "stored"
    assert "provisional" not in held.get(f"/api/v1/runs/{run_id}/forecast/loss").json()["prior"]
    assert sent.sent == [(FORECAST_SERIES, run_id, "loss", 1)] * 3 and not _pending(
        settings, run_id)


def test_through_a_celery_worker_the_provisional_forecast_is_followed_by_the_final(
        celery_client, pg_url, redis_url, project, tmp_path: Path):
    log = tmp_path / "worker.log"
    shared = redis.Redis.from_url(redis_url)
    before = set(shared.keys(b"curvecast:memo:replay:*"))
    # One pool process: the memo of the first forecast's replays is where the next job runs.
    worker = start_worker(pg_url, redis_url, concurrency=1, log=log)
    try:
        for floor in (2.0, 2.1, 2.2, 2.3):
            _run(celery_client, project, floor, TOTAL, finish=True)
        run_id = _run(celery_client, project, 2.15, 430, finish=False)

        def forecast() -> dict:
            return celery_client.get(f"/api/v1/runs/{run_id}/forecast/loss").json()

        poll(forecast, lambda b: b.get("fitted_upto_step") == 420, 120, "no first forecast")
        _log(celery_client, run_id, 430, 480, 2.15)
        body = poll(forecast, lambda b: b.get("fitted_upto_step") == 470
                    and "provisional" not in (b.get("prior") or ""), 120, "no final forecast")
        assert body["status"] == "ready" and "calibrated on" in body["prior"]
        # (The log also holds the jobs of other tests' runs that the worker's sweep sent.)
        log_text = poll(lambda: log.read_text(), lambda t: "'provisional'" in t, 30,
                        "the worker made no provisional forecast")
        assert "TypeError" not in log_text
        # Its pool process shared the replays it made through the broker's Redis.
        assert set(shared.keys(b"curvecast:memo:replay:*")) - before
    finally:
        stop(worker)
