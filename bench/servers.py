"""Servers for the benchmarks: fresh Postgres databases, `curvecast up`, an MLflow server.

Every benchmark starts its own processes on loopback and stops them when done.
"""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import psycopg

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "bench" / ".work"
MLFLOW_VENV = WORK / "mlflow-venv"
PG_ADMIN = os.environ.get("CURVECAST_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
ADMIN_KEY = "bench-admin-key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fresh_database(name: str) -> str:
    """Drop and create `name`; return its psycopg SQLAlchemy URL."""
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + "/" + name


def wait_forecast(c: httpx.Client, run_id: str, step: int, timeout: float,
                  every: float = 0.05, answered: list[float] | None = None,
                  final: bool = False) -> dict | None:
    """The run's loss forecast once it covers `step` (``final``: and is not provisional, the
    one a stop is decided on); None after `timeout` seconds. ``answered`` gets each poll's
    round trip in seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        fc = c.get(f"/api/v1/runs/{run_id}/forecast/loss")
        if answered is not None:
            answered.append(fc.elapsed.total_seconds())
        body = fc.json() if fc.status_code == 200 else {}
        if body.get("fitted_upto_step") == step and not (final and body.get("provisional")):
            return body
        time.sleep(every)
    return None


def loss_rows(steps: np.ndarray, loss: np.ndarray, idx: np.ndarray,
              lr: tuple[np.ndarray, np.ndarray] | None = None) -> list[dict]:
    """The `rows` of POST /runs/{id}/metrics for the points ``idx`` of a loss curve and,
    given as (steps, values), the lr logged at its own steps, in step order."""
    values: dict[int, dict[str, float]] = {int(steps[i]): {"loss": float(loss[i])} for i in idx}
    for step, value in zip(*(lr or ((), ())), strict=True):
        values.setdefault(int(step), {})["lr"] = float(value)
    return [{"step": step, "values": v} for step, v in sorted(values.items())]


def post_finished(c: httpx.Client, run_id: str, steps: np.ndarray, loss: np.ndarray,
                  lr: tuple[np.ndarray, np.ndarray] | None = None) -> None:
    """Log a whole loss curve (and, given, its lr) to ``run_id`` in one batch and mark the
    run finished."""
    c.post(f"/api/v1/runs/{run_id}/metrics",
           json={"rows": loss_rows(steps, loss, np.arange(len(steps)), lr)}).raise_for_status()
    c.patch(f"/api/v1/runs/{run_id}", json={"status": "finished"}).raise_for_status()


def wait_http(url: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout}s")


@contextmanager
def process(cmd: list[str], health: str, env: dict[str, str] | None = None,
            log_name: str = "server") -> Iterator[None]:
    WORK.mkdir(parents=True, exist_ok=True)
    with open(WORK / f"{log_name}.log", "wb") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **(env or {})},
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_http(health)
            yield
        finally:
            # The whole process group: servers such as MLflow's fork workers of their own.
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


@contextmanager
def celery_worker(db_url: str, broker_url: str, concurrency: int = 1,
                  log_name: str = "worker") -> Iterator[None]:
    """A `curvecast worker` on `db_url` and `broker_url`; its log goes to
    bench/.work/<log_name>-<concurrency>.log."""
    WORK.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "CURVECAST_DATABASE_URL": db_url, "CURVECAST_BROKER_URL": broker_url}
    with open(WORK / f"{log_name}-{concurrency}.log", "w") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "backend", "worker", f"--concurrency={concurrency}"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            yield
        finally:
            worker.terminate()
            worker.wait(30)


_SERVERS = itertools.count()  # numbers the servers of one bench: a log file each


@contextmanager
def curvecast_server(db_url: str, broker_url: str = "", workers: int = 1,
                     **env: str) -> Iterator[str]:
    """`curvecast up` on `db_url` (migrated first) with `workers` API processes; yields its
    base URL."""
    cli = [sys.executable, "-m", "backend"]
    subprocess.run([*cli, "migrate", "--db", db_url], cwd=ROOT, check=True,
                   capture_output=True)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    environ = {"CURVECAST_ADMIN_KEY": ADMIN_KEY, "CURVECAST_BROKER_URL": broker_url, **env}
    with process([*cli, "up", "--port", str(port), "--db", db_url, "--workers", str(workers)],
                 f"{base}/api/v1/health", environ, f"curvecast-{next(_SERVERS)}"):
        yield base


def mlflow_python() -> str:
    python = MLFLOW_VENV / "bin" / "python"
    if not python.exists():
        raise SystemExit("MLflow is not installed: run scripts/bench.sh (it makes "
                         f"{MLFLOW_VENV} from bench/requirements-mlflow.txt)")
    return str(python)


@contextmanager
def mlflow_server(db_url: str, workers: int = 2) -> Iterator[str]:
    """An MLflow tracking server on `db_url` (MLflow migrates it itself); yields its URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    artifacts = WORK / "mlflow-artifacts"
    cmd = [mlflow_python(), "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
           "--backend-store-uri", db_url, "--default-artifact-root", str(artifacts),
           "--workers", str(workers)]
    with process(cmd, f"{base}/health", log_name="mlflow"):
        yield base
