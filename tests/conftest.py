"""Shared fixtures: a real Postgres database (fresh per test session and xdist worker, built
by the real migrations), a real Redis, and the app wired to them.

The services must be running: `scripts/test.sh` (the README's test command) starts
throwaway ones when they are not. Nothing here skips: a missing server is an error.
"""

import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlparse

import psycopg
import pytest
from fastapi.testclient import TestClient

from backend import migrate
from backend.app import create_app
from backend.db import get_engine
from backend.jobs import InProcessDispatcher
from backend.settings import Settings
from workers import tasks
from workers.tasks import handlers

ADMIN_KEY = "test-admin-key"
PG_ADMIN_URL = os.environ.get("CURVECAST_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("CURVECAST_TEST_REDIS", "redis://127.0.0.1:6379")


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        socket.create_connection((parsed.hostname, parsed.port or default_port), 2).close()
        return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def worker_id_suffix(request) -> str:
    return getattr(request.config, "workerinput", {}).get("workerid", "main")


@pytest.fixture(scope="session")
def pg_url(worker_id_suffix: str) -> Iterator[str]:
    """A fresh database migrated to head, as a SQLAlchemy URL (postgresql+psycopg://)."""
    if not _reachable(PG_ADMIN_URL, 5432):
        pytest.fail(f"Postgres is not reachable at {PG_ADMIN_URL}: run scripts/test.sh")
    # The pid keeps two test sessions on one Postgres from dropping each other's database.
    name = f"curvecast_test_{worker_id_suffix}_{os.getpid()}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    url = f"{base}/{name}"
    migrate.upgrade(url)
    yield url
    get_engine(url).dispose()
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def redis_url(worker_id_suffix: str) -> str:
    """A Redis database number of its own for this xdist worker, emptied first."""
    if not _reachable(REDIS_URL, 6379):
        pytest.fail(f"Redis is not reachable at {REDIS_URL}: run the tests via scripts/test.sh")
    import redis

    number = 15 - (int(worker_id_suffix[2:]) if worker_id_suffix.startswith("gw") else 0)
    url = f"{REDIS_URL}/{number}"
    redis.Redis.from_url(url).flushdb()
    return url


@pytest.fixture(scope="session")
def settings(pg_url: str) -> Settings:
    return Settings(database_url=pg_url, admin_key=ADMIN_KEY, broker_url="")


class HeldDispatcher:
    """A dispatcher that runs nothing: a test that makes the jobs itself calls them directly."""

    def send(self, task: str, *args: str | int) -> None:
        pass


def forecast_to_final(settings: Settings, run_id: str, key: str = "loss") -> str:
    """A series' forecast job and the replaying jobs it sends (a run's first forecast beside
    finished runs is provisional), made here in turn up to the final forecast; the last
    job's outcome."""
    outcome = tasks.forecast_series(settings, HeldDispatcher(), run_id, key)
    while outcome in ("provisional", "replaying"):
        outcome = tasks.forecast_series(settings, HeldDispatcher(), run_id, key, 1)
    return outcome


@contextmanager
def held_app(settings: Settings) -> Iterator[TestClient]:
    """The app on ``settings``, signed in as admin, running no job but those the test makes."""
    with TestClient(create_app(settings, HeldDispatcher())) as client:
        client.headers["Authorization"] = f"Bearer {ADMIN_KEY}"
        yield client


@pytest.fixture(scope="session")
def dispatcher(settings: Settings) -> Iterator[InProcessDispatcher]:
    d = InProcessDispatcher()
    d.start(handlers(settings, d))
    yield d
    d.close()


@pytest.fixture(scope="session")
def client(settings: Settings, dispatcher: InProcessDispatcher) -> Iterator[TestClient]:
    """The real app on the real Postgres, with jobs run in-process; sends the admin key."""
    with TestClient(create_app(settings, dispatcher)) as c:
        c.headers["Authorization"] = f"Bearer {ADMIN_KEY}"
        yield c


@pytest.fixture
def project() -> str:
    """A project name of this test's own, so tests never see each other's runs."""
    return f"p-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def make_run(client: TestClient, project: str):
    def make(**fields) -> dict:
        body = {"project": project, "name": "r", **fields}
        response = client.post("/api/v1/runs", json=body)
        assert response.status_code in (200, 201), response.text
        return response.json()

    return make
