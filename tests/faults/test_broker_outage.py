"""Redis dies: ingest still stores every point, and the forecast job lost with it is sent
again by the sweep once Redis is back, then run by a real Celery worker."""

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from backend.app import create_app
from backend.jobs import CeleryDispatcher
from backend.settings import Settings
from tests.conftest import ADMIN_KEY, free_port
from tests.waiting import poll
from tests.workers.test_celery_worker import start_worker, stop, wait_for_forecast


class ThrowawayRedis:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [shutil.which("redis-server"), "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL)
        for _ in range(50):
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("throwaway redis-server did not start")

    def stop(self) -> None:
        if self.proc:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def redis_server() -> Iterator[ThrowawayRedis]:
    server = ThrowawayRedis()
    server.start()
    yield server
    server.stop()


def test_points_survive_a_redis_outage_and_the_forecast_catches_up(pg_url, redis_server,
                                                                 project):
    settings = Settings(database_url=pg_url, broker_url=redis_server.url, admin_key=ADMIN_KEY)
    with TestClient(create_app(settings, CeleryDispatcher(redis_server.url))) as client:
        client.headers["Authorization"] = f"Bearer {ADMIN_KEY}"
        run = client.post("/api/v1/runs", json={"project": project, "total_steps": 4000}).json()
        redis_server.stop()
        rows = [{"step": s, "values": {"loss": 2 + 3 * (s + 10) ** -0.3}}
                for s in range(0, 2000, 10)]
        r = client.post(f"/api/v1/runs/{run['id']}/metrics", json={"rows": rows})
        assert r.status_code == 200 and r.json()["accepted"] == 200
        stored = client.get(f"/api/v1/runs/{run['id']}/metrics/loss").json()
        assert stored["count"] == 200
        assert client.get(f"/api/v1/runs/{run['id']}/forecast/loss").json()["status"] == "pending"

        redis_server.start()
        worker = start_worker(pg_url, redis_server.url)  # its beat sweeps every second
        try:
            assert wait_for_forecast(client, run["id"], timeout=90)["fitted_upto_step"] == 1990
        finally:
            stop(worker)


def finished_scaling_run(client: TestClient, project: str) -> None:
    """One finished run with N, D and a val_loss: a scaling fit's job has a run to read (too
    few to fit, so it ends insufficient_data)."""
    run = client.post("/api/v1/runs", json={"project": project, "params": 1e8,
                                            "tokens": 2e9}).json()
    client.post(f"/api/v1/runs/{run['id']}/metrics",
                json={"rows": [{"step": 100, "values": {"val_loss": 3.1}}]})
    client.patch(f"/api/v1/runs/{run['id']}", json={"status": "finished"})


def test_a_scaling_fit_requested_during_an_outage_is_sent_again(pg_url, redis_server, project):
    settings = Settings(database_url=pg_url, broker_url=redis_server.url, admin_key=ADMIN_KEY)
    with TestClient(create_app(settings, CeleryDispatcher(redis_server.url))) as client:
        client.headers["Authorization"] = f"Bearer {ADMIN_KEY}"
        finished_scaling_run(client, project)
        redis_server.stop()
        fit = client.post(f"/api/v1/projects/{project}/scaling-fits",
                          json={"metric": "val_loss", "law": "chinchilla"})
        assert fit.status_code == 201 and fit.json()["status"] == "pending"
        redis_server.start()
        worker = start_worker(pg_url, redis_server.url)
        try:
            body = poll(lambda: client.get(f"/api/v1/scaling-fits/{fit.json()['id']}").json(),
                        lambda body: body["status"] != "pending", 90,
                        "the lost fit was never sent again", every=0.3)
            assert body["status"] == "insufficient_data" and body["n_runs"] == 1
        finally:
            stop(worker)
