"""Fixtures of the worker tests."""

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from backend.app import create_app
from backend.jobs import CeleryDispatcher
from backend.settings import Settings
from tests.conftest import ADMIN_KEY


@pytest.fixture
def celery_client(pg_url: str, redis_url: str) -> Iterator[TestClient]:
    """The app as deployed with a broker: it only publishes; it runs no job itself."""
    settings = Settings(database_url=pg_url, broker_url=redis_url, admin_key=ADMIN_KEY)
    with TestClient(create_app(settings, CeleryDispatcher(redis_url))) as c:
        c.headers["Authorization"] = f"Bearer {ADMIN_KEY}"
        yield c
