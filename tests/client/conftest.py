"""A real `curvecast up` process on the session's Postgres database, started and stopped at will.

The client is tested only through what a user has: the server's public HTTP API, and processes
that log, die and sync.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import curvecast
import httpx
import pytest

from tests.conftest import ADMIN_KEY, free_port
from tests.waiting import wait_healthy

BIN = Path(sys.executable).parent



class Server:
    """One `curvecast up` on a fixed port, so it can be stopped and started again."""

    def __init__(self, db_url: str, log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._db_url = db_url
        self._log_path = log_path
        self._proc: subprocess.Popen | None = None
        self.api = httpx.Client(
            base_url=f"{self.url}/api/v1", headers={"Authorization": f"Bearer {ADMIN_KEY}"}
        )

    def start(self) -> None:
        """Spawn the server; returns at once (see `wait_ready`)."""
        env = {**os.environ, "CURVECAST_ADMIN_KEY": ADMIN_KEY}
        env.pop("CURVECAST_BROKER_URL", None)  # jobs in-process: no Celery in these tests
        with self._log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                [
                    BIN / "curvecast",
                    "up",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--db",
                    self._db_url,
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def wait_ready(self, timeout: float = 30.0) -> None:
        assert self._proc is not None, "start() first"
        wait_healthy(self.url, timeout, self._proc, self._log_path)

    def kill(self) -> None:
        """Stop it the hard way: answers in flight may be lost after their commit."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGKILL)
            self._proc.wait(10)
        self._proc = None

    def get(self, path: str, **params: object) -> dict:
        response = self.api.get(path, params=params)
        response.raise_for_status()
        return response.json()

    def points(self, run_id: str, key: str) -> tuple[list[int], list[float]]:
        body = self.get(f"/runs/{run_id}/metrics/{key}", max_points=100_000)
        return body["step"], body["value"]


@pytest.fixture
def make_server(pg_url: str, tmp_path: Path) -> Iterator:
    """Servers of this test's own, not started; killed at the end."""
    made: list[Server] = []

    def make() -> Server:
        server = Server(pg_url, tmp_path / f"server-{len(made)}.log")
        made.append(server)
        return server

    yield make
    for server in made:
        server.kill()
        server.api.close()


@pytest.fixture(scope="session")
def server(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One running server for the tests that do not stop it."""
    srv = Server(pg_url, tmp_path_factory.mktemp("server") / "server.log")
    srv.start()
    srv.wait_ready()
    yield srv
    srv.kill()
    srv.api.close()


@pytest.fixture
def spool_dir(tmp_path: Path) -> Path:
    return tmp_path / "spool"


@pytest.fixture
def start_run(server: Server, spool_dir: Path, project: str) -> Iterator:
    """`curvecast.init` against `server` in this test's project; unfinished runs end at teardown."""
    runs: list[curvecast.Run] = []

    def start(**fields: object) -> curvecast.Run:
        options = {"url": server.url, "api_key": ADMIN_KEY, "spool_dir": spool_dir}
        run = curvecast.init(**{"project": project, **options, **fields})
        runs.append(run)
        return run

    yield start
    for run in runs:
        run.finish(timeout=5)


@pytest.fixture
def client_env(server: Server, spool_dir: Path) -> dict[str, str]:
    """The environment of a training process that talks to `server` and spools to `spool_dir`."""
    return {
        **os.environ,
        "CURVECAST_URL": server.url,
        "CURVECAST_API_KEY": ADMIN_KEY,
        "CURVECAST_SPOOL_DIR": str(spool_dir),
    }
