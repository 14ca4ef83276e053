"""A real `curvecast worker` process consumes forecast jobs from the real Redis."""

import os
import subprocess
import sys
import time
from pathlib import Path

from fastapi.testclient import TestClient

from tests.waiting import poll

ROOT = Path(__file__).resolve().parents[2]


def start_worker(pg_url: str, redis_url: str, concurrency: int = 2,
                 log: Path | None = None) -> subprocess.Popen:
    """A worker process; by default two pool processes, as docker-compose.yml runs it: forked
    children must not share the main process's database connection (test_fork.py).
    ``log``: the file its output goes to."""
    env = {**os.environ, "CURVECAST_DATABASE_URL": pg_url, "CURVECAST_BROKER_URL": redis_url,
           "CURVECAST_SWEEP_EVERY_S": "1", "CURVECAST_FORECAST_REQUEUE_AFTER_S": "3"}
    cmd = [sys.executable, "-m", "backend", "worker", "--concurrency", str(concurrency)]
    if log is None:
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.STDOUT)
    with log.open("w") as out:  # the child keeps its own copy of the file
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def wait_for_forecast(client: TestClient, run_id: str, timeout: float = 120) -> dict:
    return poll(lambda: client.get(f"/api/v1/runs/{run_id}/forecast/loss").json(),
                lambda body: body["status"] != "pending", timeout, "no forecast")


def _curve(client: TestClient, project: str) -> str:
    run = client.post("/api/v1/runs", json={"project": project, "total_steps": 4000}).json()
    rows = [{"step": s, "values": {"loss": 2 + 3 * (s + 10) ** -0.3}} for s in range(0, 2000, 10)]
    assert client.post(f"/api/v1/runs/{run['id']}/metrics", json={"rows": rows}).status_code == 200
    return run["id"]


def test_a_worker_process_consumes_the_forecast_job(celery_client, pg_url, redis_url, project):
    worker = start_worker(pg_url, redis_url)
    try:
        run_id = _curve(celery_client, project)
        body = wait_for_forecast(celery_client, run_id)
        assert body["fitted_upto_step"] == 1990 and body["target_step"] == 4000
    finally:
        stop(worker)


def test_a_job_sent_while_no_worker_runs_waits_in_redis(celery_client, pg_url, redis_url,
                                                      project):
    run_id = _curve(celery_client, project)
    time.sleep(1)
    assert celery_client.get(f"/api/v1/runs/{run_id}/forecast/loss").json()["status"] == "pending"
    worker = start_worker(pg_url, redis_url)
    try:
        assert wait_for_forecast(celery_client, run_id)["fitted_upto_step"] == 1990
    finally:
        stop(worker)
