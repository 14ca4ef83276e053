"""The API on both of its databases: the shared Postgres and the embedded SQLite."""

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from backend import migrate
from backend.app import create_app
from backend.db import get_engine
from backend.jobs import InProcessDispatcher
from backend.settings import Settings
from tests.conftest import ADMIN_KEY
from workers.tasks import handlers


@pytest.fixture(scope="session")
def sqlite_client(tmp_path_factory) -> Iterator[TestClient]:
    """The real app on a SQLite file built by the real migrations, jobs in-process: the
    embedded mode of `curvecast up`."""
    url = f"sqlite:///{tmp_path_factory.mktemp('embedded') / 'curvecast.db'}"
    migrate.upgrade(url)
    settings = Settings(database_url=url, admin_key=ADMIN_KEY, broker_url="")
    dispatcher = InProcessDispatcher()
    dispatcher.start(handlers(settings, dispatcher))
    with TestClient(create_app(settings, dispatcher)) as c:
        c.headers["Authorization"] = f"Bearer {ADMIN_KEY}"
        yield c
    dispatcher.close()
    get_engine(url).dispose()


@pytest.fixture(params=["postgres", "sqlite"])
def api(request) -> TestClient:
    return request.getfixturevalue("client" if request.param == "postgres" else "sqlite_client")
