"""The schema is made only by the migrations: upgrading from empty gives exactly the models,
on Postgres and on SQLite, and the server refuses a database that is not at the head."""

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from backend import migrate
from backend.db import get_engine
from backend.models import Base
from tests.conftest import PG_ADMIN_URL


@pytest.fixture
def empty_pg() -> Iterator[str]:
    name = f"curvecast_mig_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    url = f"{base}/{name}"
    yield url
    get_engine(url).dispose()
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def empty_sqlite(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'c.db'}"


def _diff(url: str) -> list:
    with get_engine(url).connect() as conn:
        return compare_metadata(MigrationContext.configure(conn), Base.metadata)


@pytest.mark.parametrize("db", ["empty_pg", "empty_sqlite"])
def test_upgrade_from_empty_builds_exactly_the_models(db, request):
    url = request.getfixturevalue(db)
    migrate.upgrade(url)
    assert migrate.current_revision(url) == migrate.head_revision()
    assert _diff(url) == []


@pytest.mark.parametrize("db", ["empty_pg", "empty_sqlite"])
def test_downgrade_to_empty_and_upgrade_again(db, request):
    url = request.getfixturevalue(db)
    migrate.upgrade(url)
    migrate.downgrade(url, "base")
    assert migrate.current_revision(url) is None
    migrate.upgrade(url)
    assert _diff(url) == []


def test_server_refuses_a_database_not_at_head(empty_pg):
    with pytest.raises(migrate.SchemaNotCurrent, match="curvecast migrate"):
        migrate.require_head(empty_pg)
    migrate.upgrade(empty_pg)
    migrate.require_head(empty_pg)
