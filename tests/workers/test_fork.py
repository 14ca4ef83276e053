"""A forked process (Celery's prefork pool) never shares its parent's database connections."""

import multiprocessing

from sqlalchemy import text

from backend.db import get_engine


def _backend_pid(url: str) -> int:
    with get_engine(url).connect() as conn:
        return int(conn.execute(text("select pg_backend_pid()")).scalar_one())


def test_a_forked_child_opens_its_own_connections_and_leaves_the_parents_open(pg_url):
    parent = _backend_pid(pg_url)  # its connection now waits in the engine's pool
    with multiprocessing.get_context("fork").Pool(1) as pool:
        child = pool.apply(_backend_pid, (pg_url,))
    assert child != parent, "the child used the parent's pooled connection"
    assert _backend_pid(pg_url) == parent  # the parent's connection is still open, still its
