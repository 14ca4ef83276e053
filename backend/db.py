"""Engine and session factory, shared by the API and the workers."""

import os
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

_ENGINES: weakref.WeakSet[Engine] = weakref.WeakSet()  # every engine get_engine made

# A Postgres session left idle inside a transaction is ended by the server after this long,
# and the row locks it held with it. A worker frozen or cut off between two statements of a
# write (SIGSTOP, a paused VM, a lost node) otherwise held its series row until TCP gave up
# on it, hours, and every batch of that run waited on the lock (a test's frozen worker did,
# 2026-12-07). Nothing of ours idles in a transaction on purpose: jobs end their reads before
# fitting (workers.tasks, workers.scaling_tasks).
IDLE_IN_TRANSACTION_MS = 15_000


def normalise_url(url: str) -> str:
    """Accept plain `postgresql://` URLs and route them to psycopg 3."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


@lru_cache(maxsize=8)
def get_engine(url: str) -> Engine:
    """One pooled engine per database URL for the life of the process."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = create_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)
        event.listen(engine, "connect", _postgres_settings)
    _ENGINES.add(engine)
    return engine


def _forget_inherited_connections() -> None:
    """In a forked child, start every pool empty and leave the parent's connections open for
    the parent (SQLAlchemy's recipe for os.fork). A pooled connection is one socket to one
    server session: `curvecast worker --concurrency 2` checked the schema in its main
    process, then forked both pool processes with that connection in their pools, and their
    first jobs' queries interleaved on it ("connection in transaction status INTRANS",
    "server closed the connection unexpectedly": bench/RESULTS.md, 2026-12-07)."""
    for engine in list(_ENGINES):
        engine.dispose(close=False)


os.register_at_fork(after_in_child=_forget_inherited_connections)


def _postgres_settings(dbapi_conn, _record) -> None:
    # A SET on each new connection rather than a startup `options` parameter, which
    # connection poolers such as PgBouncer refuse by default.
    with dbapi_conn.cursor() as cur:
        cur.execute(f"SET idle_in_transaction_session_timeout = {int(IDLE_IN_TRANSACTION_MS)}")
    dbapi_conn.commit()


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    # WAL lets the dashboard read while a batch is written; foreign keys are off by default.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


@lru_cache(maxsize=8)
def get_sessionmaker(url: str) -> sessionmaker[Session]:
    return sessionmaker(get_engine(url), expire_on_commit=False)


@contextmanager
def session_scope(url: str) -> Iterator[Session]:
    """A unit of work for workers and scripts: commit on success, roll back on error."""
    session = get_sessionmaker(url)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
