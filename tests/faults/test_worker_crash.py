"""A Celery worker is SIGKILLed in the middle of a job, main process and pool alike (an OOM
kill, a node lost): the job it held is neither run nor acknowledged, and Redis keeps it unacked
until its visibility timeout (an hour). The request it served is in Postgres, so the next
worker's sweep sends it again: the forecast catches up, the scaling fit is made, and the alert
is delivered."""

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from backend.app import create_app
from backend.jobs import CeleryDispatcher
from backend.settings import Settings
from tests.alerts.test_alerts import Receiver
from tests.conftest import ADMIN_KEY
from tests.faults.test_broker_outage import finished_scaling_run
from tests.waiting import poll
from tests.workers.test_celery_worker import start_worker, stop, wait_for_forecast


@pytest.fixture
def client(pg_url: str, redis_url: str) -> Iterator[TestClient]:
    """The app as deployed with a broker, webhooks to loopback allowed (the receiver's)."""
    settings = Settings(database_url=pg_url, broker_url=redis_url, admin_key=ADMIN_KEY,
                        webhook_allow_private=True)
    with TestClient(create_app(settings, CeleryDispatcher(redis_url))) as c:
        c.headers["Authorization"] = f"Bearer {ADMIN_KEY}"
        yield c


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid``, from /proc (no procps needed)."""
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])  # after "(comm)": state ppid
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        if ppid == pid:
            kids.append(int(stat.parent.name))
    return kids


def _freeze(worker: subprocess.Popen) -> list[int]:
    """Stop the worker's pool (and beat) processes where they are: a job handed to them
    now stays in flight, as in a fit that is under way when the machine dies."""
    pids = _children(worker.pid)
    assert pids, "the worker has no pool processes"
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    return pids


def _kill(worker: subprocess.Popen, frozen: list[int]) -> None:
    """SIGKILL the whole worker: no warm shutdown, nothing acknowledged or handed back."""
    for pid in [worker.pid, *frozen]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    worker.wait()


def _post(client, run_id: str, start: int, stop_at: int, value=None) -> None:
    rows = [{"step": s, "values": {"loss": 2 + 3 * (s + 10) ** -0.3 if value is None else value}}
            for s in range(start, stop_at, 10)]
    assert client.post(f"/api/v1/runs/{run_id}/metrics", json={"rows": rows}).status_code == 200


def _next_worker_until(pg_url: str, redis_url: str, read: Callable[[], dict],
                       done: Callable[[dict], bool], what: str) -> dict:
    """Start a fresh worker (its beat sweeps every second) and wait up to 60 s until
    ``done(read())``; the last read."""
    worker = start_worker(pg_url, redis_url)
    try:
        return poll(read, done, 60, what, every=0.3)
    finally:
        stop(worker)


def test_a_forecast_job_in_flight_when_its_worker_dies_is_run_by_the_next_worker(
        client, pg_url, redis_url, project):
    run_id = client.post("/api/v1/runs",
                         json={"project": project, "total_steps": 4000}).json()["id"]
    worker = start_worker(pg_url, redis_url)
    try:
        _post(client, run_id, 0, 1000)
        assert wait_for_forecast(client, run_id)["fitted_upto_step"] == 990
        frozen = _freeze(worker)
        _post(client, run_id, 1000, 2000)
        time.sleep(2)  # the job reaches the frozen worker
        assert client.get(
            f"/api/v1/runs/{run_id}/forecast/loss").json()["fitted_upto_step"] == 990
        _kill(worker, frozen)
    finally:
        stop(worker)
    body = _next_worker_until(pg_url, redis_url,
                              lambda: client.get(f"/api/v1/runs/{run_id}/forecast/loss").json(),
                              lambda b: b["fitted_upto_step"] == 1990,
                              "the killed worker's job was never run")
    assert body["status"] == "ready" and body["target_step"] == 4000


def test_a_scaling_fit_in_flight_when_its_worker_dies_is_run_by_the_next_worker(
        client, pg_url, redis_url, project):
    finished_scaling_run(client, project)
    worker = start_worker(pg_url, redis_url)
    try:
        probe = client.post("/api/v1/runs",
                            json={"project": project, "total_steps": 4000}).json()["id"]
        _post(client, probe, 0, 1000)
        wait_for_forecast(client, probe)  # the worker consumes: the fit's job will reach it
        frozen = _freeze(worker)
        fit = client.post(f"/api/v1/projects/{project}/scaling-fits",
                          json={"metric": "val_loss", "law": "chinchilla"})
        assert fit.status_code == 201 and fit.json()["status"] == "pending"
        time.sleep(2)  # the job reaches the frozen worker
        _kill(worker, frozen)
    finally:
        stop(worker)
    body = _next_worker_until(pg_url, redis_url,
                              lambda: client.get(f"/api/v1/scaling-fits/{fit.json()['id']}").json(),
                              lambda b: b["status"] != "pending",
                              "the killed worker's fit was never run")
    assert body["status"] == "insufficient_data" and body["n_runs"] == 1


@pytest.fixture
def hanging_receiver() -> Iterator[Receiver]:
    r = Receiver(hold_first=True)
    r.start()
    yield r
    r.stop()


def test_an_alert_whose_delivery_was_cut_by_a_dead_worker_is_delivered_after_its_lease(
        client, pg_url, redis_url, project, hanging_receiver, monkeypatch):
    monkeypatch.setenv("CURVECAST_WEBHOOK_ALLOW_PRIVATE", "true")
    # Past the 5 s webhook timeout, as the setting requires: a lease shorter than a live
    # attempt lets the sweep start a second one beside it (seen under load with 3 s).
    monkeypatch.setenv("CURVECAST_ALERT_LEASE_S", "8")
    r = client.post(f"/api/v1/projects/{project}/alert-rules",
                           json={"events": ["diverged"], "webhook_url": hanging_receiver.url})
    assert r.status_code == 201, r.text
    run_id = client.post("/api/v1/runs",
                         json={"project": project, "total_steps": 4000}).json()["id"]
    worker = start_worker(pg_url, redis_url)
    try:
        _post(client, run_id, 0, 500)
        _post(client, run_id, 500, 520, value="NaN")
        assert hanging_receiver.first_arrived.wait(60), "the alert was never sent"
        _kill(worker, _children(worker.pid))
    finally:
        stop(worker)
    [cut] = client.get(f"/api/v1/projects/{project}/alerts").json()["alerts"]
    assert cut["state"] == "pending" and cut["attempts"] == 1
    assert "cut short" in cut["last_error"]  # the log shows the attempt, not its outcome
    [alert] = _next_worker_until(
        pg_url, redis_url, lambda: client.get(f"/api/v1/projects/{project}/alerts").json(),
        lambda b: b["alerts"][0]["state"] != "pending",
        "the cut delivery was never tried again")["alerts"]
    assert alert["state"] == "delivered" and alert["attempts"] == 2
    assert alert["last_error"] is None
    assert [a["event"] for a in hanging_receiver.received] == ["diverged", "diverged"]
