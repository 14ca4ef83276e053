"""A worker frozen in the middle of a write (SIGSTOP, a paused VM, a node cut off) holds the
row locks of its open transaction. Postgres ends a session idle in a transaction after
backend.db.IDLE_IN_TRANSACTION_MS, so a run's batches wait at most that long on such a
worker; and since jobs hold no transaction open while they fit, that timeout never cuts a
healthy job short; a job whose session it did end is made again. The timeout is 2 s here,
on an engine of these tests' own."""

import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from psycopg.errors import IdleInTransactionSessionTimeout
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from backend import db
from backend.forecasts.service import finish_request
from backend.metrics.reads import find_series
from backend.settings import Settings
from tests.conftest import ADMIN_KEY, HeldDispatcher, forecast_to_final, held_app
from tests.faults.test_broker_outage import finished_scaling_run
from tests.waiting import wait_until
from workers import offload, scaling_tasks, tasks

TOTAL = 2000
IDLE_MS = 2000  # the server's idle-in-transaction timeout in these tests


@pytest.fixture
def tight(pg_url: str, monkeypatch) -> Iterator[tuple[Settings, TestClient]]:
    """Settings and an app whose database sessions the server ends after IDLE_MS idle in a
    transaction (a URL of their own, so an engine of their own)."""
    monkeypatch.setattr(db, "IDLE_IN_TRANSACTION_MS", IDLE_MS)
    url = f"{pg_url}?application_name=idle-{uuid.uuid4().hex[:8]}"
    settings = Settings(database_url=url, admin_key=ADMIN_KEY, broker_url="")
    try:
        with held_app(settings) as client:
            yield settings, client
    finally:
        db.get_engine(url).dispose()


def _waiting_on_a_lock(url: str) -> bool:
    """A session of these tests' engine (its application_name) waits on a lock."""
    with db.get_engine(url).connect() as conn:
        return bool(conn.scalar(text(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND application_name = current_setting('application_name')")))


def loss(step: int, floor: float) -> float:
    return floor + 3.0 * (step + 10) ** -0.3


def log(client: TestClient, run_id: str, start: int, stop: int, floor: float = 2.0) -> None:
    rows = [{"step": s, "values": {"loss": loss(s, floor)}} for s in range(start, stop, 20)]
    r = client.post(f"/api/v1/runs/{run_id}/metrics", json={"rows": rows})
    assert r.status_code == 200, r.text


def new_run(client: TestClient, project: str, total: int = TOTAL) -> str:
    return client.post("/api/v1/runs", json={"project": project, "total_steps": total}).json()["id"]


def stop_against_the_best_finished(client: TestClient, project: str) -> None:
    r = client.put(f"/api/v1/projects/{project}/stop-policy", json={
        "metric": "loss", "mode": "min", "reference": "best_finished", "threshold": 0.9,
        "min_progress": 0.1})
    assert r.status_code == 200, r.text


def test_a_worker_frozen_inside_its_write_holds_up_a_runs_batches_only_until_the_server_ends_it(
        tight, project):
    settings, client = tight
    run_id = new_run(client, project)
    log(client, run_id, 0, 500)
    # A forecast job's write, begun as the job begins it (the series row locked first), and
    # never finished: the worker is frozen.
    frozen = db.get_sessionmaker(settings.database_url)()
    finish_request(frozen, find_series(frozen, run_id, "loss"), 480)
    try:
        answer = {}
        batch = threading.Thread(target=lambda: answer.update(
            r=client.post(f"/api/v1/runs/{run_id}/metrics", json={"rows": [
                {"step": s, "values": {"loss": loss(s, 2.0)}} for s in range(500, 1000, 20)]})))
        batch.start()
        wait_until(lambda: _waiting_on_a_lock(settings.database_url), 10,
                   "the batch never waited on the frozen worker's row lock", every=0.02)
        batch.join(30)
        assert not batch.is_alive(), "the batch still waits on the frozen worker's row lock"
        assert answer["r"].status_code == 200, answer["r"].text
        with pytest.raises(DBAPIError) as ended:  # the server ended the frozen session
            frozen.execute(select(1))
        assert isinstance(ended.value.orig, IdleInTransactionSessionTimeout)
    finally:
        frozen.invalidate()
    series = client.get(f"/api/v1/runs/{run_id}/metrics/loss").json()
    assert series["count"] == 50 and series["step"] == list(range(0, 1000, 20))  # none lost


def test_jobs_hold_no_transaction_open_while_they_fit(tight, project, monkeypatch):
    settings, client = tight
    held = HeldDispatcher()

    def slow_call(fn, *args, **kwargs):
        time.sleep(IDLE_MS / 1000 + 0.5)  # a fit slower than the idle timeout
        return fn(*args, **kwargs)

    monkeypatch.setattr(offload, "call", slow_call)
    monkeypatch.setattr(tasks, "DB_RETRY_S", ())  # a session ended by the server fails at once
    best = new_run(client, project)
    log(client, best, 0, TOTAL)
    client.patch(f"/api/v1/runs/{best}", json={"status": "finished"})
    stop_against_the_best_finished(client, project)
    worse = new_run(client, project)
    log(client, worse, 0, 1000, floor=2.6)

    assert forecast_to_final(settings, worse) == "stored"
    run = client.get(f"/api/v1/runs/{worse}").json()
    # The forecast, the stop decision and its paired check (a second slow fit) all ran.
    assert run["should_stop"] is True and run["stop_reason"]["p_paired"] is not None
    forecast = client.get(f"/api/v1/runs/{worse}/forecast/loss").json()
    assert forecast["status"] == "ready" and forecast["fitted_upto_step"] == 980

    finished_scaling_run(client, project)
    fit = client.post(f"/api/v1/projects/{project}/scaling-fits",
                      json={"metric": "val_loss", "law": "chinchilla"}).json()
    assert scaling_tasks.fit_scaling_job(settings, held, fit["id"]) == "insufficient_data"
    law = client.post(f"/api/v1/projects/{project}/hparam-laws",
                      json={"metric": "val_loss", "hparam": "lr"}).json()
    assert scaling_tasks.fit_scaling_job(settings, held, law["id"]) == "insufficient_data"


def test_a_job_whose_session_the_server_ended_is_made_again(tight, project, monkeypatch):
    """A worker frozen mid-job and resumed finds its session ended: the job reads again."""
    settings, client = tight
    run_id = new_run(client, project)
    log(client, run_id, 0, 1000)
    reads = tasks._stop_inputs
    calls = []

    def frozen_once(*args, **kwargs):
        found = reads(*args, **kwargs)
        calls.append(1)
        if len(calls) == 1:
            time.sleep(IDLE_MS / 1000 + 0.5)  # frozen inside the job's read transaction
        return found

    monkeypatch.setattr(tasks, "_stop_inputs", frozen_once)
    monkeypatch.setattr(tasks, "DB_RETRY_S", (0.1,))
    assert tasks.forecast_series(settings, HeldDispatcher(), run_id, "loss") == "stored"
    assert len(calls) == 2
    assert client.get(f"/api/v1/runs/{run_id}/forecast/loss").json()["fitted_upto_step"] == 980
