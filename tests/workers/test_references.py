"""The priors of a forecast: the latest finished runs that logged the metric, in one query."""

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import numpy as np
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from backend.db import session_scope
from backend.models import Point, Project, Run, Series, utcnow
from workers.tasks import MAX_CANDIDATES, _references


def _run(s: Session, project: Project, name: str, age_s: int, *, status: str = "finished",
         group: str | None = "g", metrics: dict[str, int] | None = None) -> Run:
    """A run last updated `age_s` ago that logged `metrics` ({key: number of points})."""
    run = Run(id=uuid.uuid4().hex, project_id=project.id, name=name, group=group,
              status=status, total_steps=1000, updated_at=utcnow() - timedelta(seconds=age_s))
    s.add(run)
    s.flush()
    for key, n in (metrics or {}).items():
        series = Series(run_id=run.id, key=key, count=n, first_step=0 if n else None,
                        last_step=10 * (n - 1) if n else None)
        s.add(series)
        s.flush()
        s.add_all(Point(series_id=series.id, step=10 * i, value=3.0 - 0.01 * i) for i in range(n))
    return run


def _project(s: Session) -> Project:
    project = Project(name=f"p-{uuid.uuid4().hex[:12]}")
    s.add(project)
    s.flush()
    return project


@contextmanager
def counting_statements(s: Session) -> Iterator[list[str]]:
    """The statements this session sends: only its own connection's, as jobs that other tests
    left to the in-process dispatcher may still be running on the same engine."""
    statements: list[str] = []
    mine = s.connection()

    def count(conn, cursor, statement, parameters, context, executemany) -> None:
        if conn is mine:
            statements.append(statement)

    engine = s.get_bind()
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


def test_older_runs_with_the_metric_are_found_past_newer_runs_without_it(pg_url: str):
    with session_scope(pg_url) as s:
        project = _project(s)
        _run(s, project, "loss-a", 300, metrics={"loss": 20, "acc": 20})
        _run(s, project, "loss-b", 290, metrics={"loss": 30})
        _run(s, project, "loss-other-group", 280, group="h", metrics={"loss": 20})
        # Newer finished runs that would fill the whole LIMIT if it counted any run.
        for i in range(MAX_CANDIDATES + 1):
            _run(s, project, f"acc-{i}", 100 - i, metrics={"acc": 20})
        _run(s, project, "loss-empty", 50, metrics={"loss": 0})
        _run(s, project, "loss-running", 10, status="running", metrics={"loss": 20})
        ungrouped = _run(s, project, "current", 0, status="running", group=None,
                         metrics={"loss": 5})
        grouped = _run(s, project, "current-g", 0, status="running", metrics={"loss": 5})
        s.flush()

        with counting_statements(s) as statements:
            refs = _references(s, ungrouped, "loss")
        assert [r.name for r in refs] == ["loss-other-group", "loss-b", "loss-a"]
        # One for the runs, one for the names of their series (which one is an lr: none
        # here gave an lr_schedule), one per run's points.
        assert len(statements) <= 2 + len(refs)

        with counting_statements(s) as statements:
            refs = _references(s, grouped, "loss")
        assert [r.name for r in refs] == ["loss-b", "loss-a"]
        assert len(statements) <= 2 + len(refs)

        b = refs[0]
        assert b.total_steps == 1000 and b.schedule is None
        assert np.array_equal(b.steps, np.arange(0, 300, 10))
        assert np.allclose(b.values, 3.0 - 0.01 * np.arange(30))
        s.rollback()


def test_a_reference_without_a_schedule_takes_the_lr_it_logged(pg_url: str):
    with session_scope(pg_url) as s:
        project = _project(s)
        _run(s, project, "logged", 200, metrics={"loss": 20, "train/learning_rate": 20})
        _run(s, project, "silent", 100, metrics={"loss": 20})
        current = _run(s, project, "current", 0, status="running", metrics={"loss": 5})
        s.flush()
        with counting_statements(s) as statements:
            refs = {r.name: r for r in _references(s, current, "loss")}
        # One more than the runs' own: the logged lr's points, read for the one run with it.
        assert len(statements) <= 2 + len(refs) + 1
        assert refs["silent"].schedule is None
        lr = refs["logged"].schedule.lr(np.array([0.0, 100.0, 190.0]))
        assert np.allclose(lr, [3.0, 2.9, 2.81])
        s.rollback()


def test_a_finished_run_is_read_once_and_read_again_only_once_it_gained_points(pg_url: str):
    with session_scope(pg_url) as s:
        project = _project(s)
        ref = _run(s, project, "ref", 100, metrics={"loss": 20})
        current = _run(s, project, "current", 0, status="running", metrics={"loss": 5})
        s.flush()
        first = _references(s, current, "loss")
        with counting_statements(s) as statements:
            again = _references(s, current, "loss")
        assert len(statements) == 2, "the finished run's points were read again"
        assert again[0] is first[0]

        series = s.scalar(select(Series).where(Series.run_id == ref.id))
        s.add(Point(series_id=series.id, step=200, value=2.5))
        series.count, series.last_step = series.count + 1, 200
        s.flush()
        with counting_statements(s) as statements:
            grown = _references(s, current, "loss")
        assert len(statements) == 3  # its points, read anew
        assert len(grown[0].steps) == 21 and grown[0].steps[-1] == 200
        s.rollback()
