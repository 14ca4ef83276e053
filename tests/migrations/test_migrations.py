"""The schema is made only by the migrations: upgrading from empty gives exactly the models,
on Postgres and on SQLite, and the server refuses a database that is not at the head."""

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from backend import migrate
from backend.db import get_engine, session_scope
from backend.models import Base, Forecast, Project, Run
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


def _by_run(url: str, column: str) -> dict:
    with get_engine(url).connect() as conn:
        return dict(conn.execute(text(f"SELECT run_id, {column} FROM forecasts")).all())


@pytest.mark.parametrize("db", ["empty_pg", "empty_sqlite"])
def test_a_provisional_forecast_stays_provisional_across_0007_both_ways(db, request):
    # 0007 replaced 0006's provisional flag by the step it has been provisional since.
    url = request.getfixturevalue(db)
    migrate.upgrade(url)
    with session_scope(url) as s:
        project = Project(name="migrated")
        s.add(project)
        s.flush()
        for run_id, since in (("provisional", 400), ("final", None)):
            s.add(Run(id=run_id, project_id=project.id, name=run_id))
            s.flush()
            s.add(Forecast(run_id=run_id, key="loss", status="ready", fitted_upto_step=420,
                           provisional_since_step=since))
    migrate.downgrade(url, "0006")
    assert {k: bool(v) for k, v in _by_run(url, "provisional").items()} == {
        "provisional": True, "final": False}
    migrate.upgrade(url)
    assert _by_run(url, "provisional_since_step") == {"provisional": 420, "final": None}
