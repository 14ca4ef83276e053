"""Run and check Alembic migrations from code (CLI, embedded start-up, tests)."""

from importlib import resources

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from backend.db import get_engine, normalise_url

# The top-level migrations/ folder, installed as this package (see pyproject.toml's package-dir).
MIGRATIONS_PACKAGE = "backend.migrations"


def alembic_config(database_url: str) -> Config:
    """The configuration of a run from code. alembic.ini is only for the `alembic` command in a
    checkout (writing revisions): an installed wheel has no such file."""
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files(MIGRATIONS_PACKAGE)))
    cfg.set_main_option("path_separator", "os")
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
