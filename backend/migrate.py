"""Run and check Alembic migrations from code (CLI, embedded start-up, tests)."""

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from backend.db import get_engine, normalise_url

ROOT = Path(__file__).resolve().parent.parent


def alembic_config(database_url: str) -> Config:
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    cfg.attributes["database_url"] = normalise_url(database_url)
    return cfg


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def current_revision(database_url: str) -> str | None:
    with get_engine(database_url).connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


class SchemaNotCurrent(RuntimeError):
    """The database is not at the migration head; the server refuses to run on it."""


def require_head(database_url: str) -> None:
    current, head = current_revision(database_url), head_revision()
    if current != head:
        raise SchemaNotCurrent(
            f"database schema is at {current or 'nothing'}, code expects {head}: "
            f"run `curvecast migrate --db {database_url}`"
        )


def downgrade(database_url: str, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)
