"""A forked process (Celery's prefork pool) never shares its parent's database connections."""

import gc
import multiprocessing

from sqlalchemy import text

from backend.db import get_engine


def _backend_pid(url: str) -> int:
    with get_engine(url).connect() as conn:
        return int(conn.execute(text("select pg_backend_pid()")).scalar_one())


def _child(url: str) -> int:
    """In the forked child: whatever it inherited is collected (a connection closed then
    would end the parent's server session too), then its own connection's server pid."""
    gc.collect()
    return _backend_pid(url)


def _backends(url: str) -> set[int]:
    """The server sessions open on this test database (this process's pooled ones)."""
    with get_engine(url).connect() as conn:
        return set(conn.execute(text(
            "select pid from pg_stat_activity where datname = current_database()")).scalars())


def test_a_forked_child_opens_its_own_connections_and_leaves_the_parents_open(pg_url):
    _backend_pid(pg_url)  # at least one connection waits in the engine's pool
    before = _backends(pg_url)
    with multiprocessing.get_context("fork").Pool(1) as pool:
        child = pool.apply(_child, (pg_url,))
    assert child not in before, "the child used one of the parent's pooled connections"
    assert before <= _backends(pg_url), "the child closed the parent's connections"
