"""`curvecast up` with nothing configured: a SQLite file under ./.curvecast, jobs in-process,
and with --demo, simulated runs logging live through the HTTP API with the real client."""

import http.client
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import free_port
from tests.waiting import wait_healthy

ROOT = Path(__file__).resolve().parents[2]



def _bare_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CURVECAST_")}
    env["PYTHONPATH"] = str(ROOT)
    return env


def test_up_with_nothing_configured_serves_forecasts_from_sqlite(tmp_path):
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "backend", "up", "--port", str(port),
                               "--demo"], cwd=tmp_path, env=_bare_env(),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        key_file = tmp_path / ".curvecast" / "demo.key"
        while time.monotonic() < deadline and not key_file.exists():
            time.sleep(0.2)
        assert (tmp_path / ".curvecast" / "curvecast.db").exists()
        headers = {"Authorization": f"Bearer {key_file.read_text().strip()}"}
        health = wait_healthy(base, deadline - time.monotonic(), server)
        assert (health["database"], health["jobs"]) == ("sqlite", "in-process")
        forecast: dict = {}
        while time.monotonic() < deadline:
            runs = httpx.get(f"{base}/api/v1/runs", params={"project": "demo"},
                             headers=headers).json().get("runs", [])
            live = [r for r in runs if r["status"] == "running" and r["last_step"]]
            if live:
                forecast = httpx.get(f"{base}/api/v1/runs/{live[0]['id']}/forecast/loss",
                                     headers=headers).json()
                if forecast["status"] == "ready":
                    break
            time.sleep(0.5)
        assert forecast.get("status") == "ready", forecast
        assert forecast["final"]["lower"] <= forecast["final"]["mean"] <= forecast["final"]["upper"]
        assert {r["name"] for r in runs} >= {"ladder-cosine-a", "ladder-wsd-a"}
        # Its fits run off the API process, in the child it spawned (workers.offload).
        children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
        assert any(b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes() for c in children)
    finally:
        server.terminate()
        server.wait(20)


def test_up_keeps_an_idle_connection_open_longer_than_clients_pool_it(tmp_path):
    # httpx drops a pooled connection after 5 s idle; a server that closes at 5 s races it.
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "backend", "up", "--port", str(port)],
                              cwd=tmp_path, env=_bare_env(),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", 120, server)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)  # one socket
        try:
            for pause in (0.0, 6.5):  # closed by the server: RemoteDisconnected
                time.sleep(pause)
                conn.request("GET", "/api/v1/health")
                answer = conn.getresponse()
                assert (answer.status, answer.read()[:14]) == (200, b'{"status":"ok"')
        finally:
            conn.close()
    finally:
        server.terminate()
        server.wait(20)
