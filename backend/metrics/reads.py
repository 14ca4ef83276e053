"""Reading series back: downsampled for charts, bucket-averaged for fitting."""

from collections import defaultdict
from collections.abc import Sequence

import numpy as np
from sqlalchemy import BigInteger, Double, and_, bindparam, case, func, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from backend.metrics.downsample import minmax_downsample
from backend.metrics.keys import lr_key
from backend.metrics.rollup import BLOCK_LEVELS, block_size
from backend.models import Point, PointBlock, Series

# Blocks are read when the finest level that fits gives at least this many per output point.
MAX_BLOCKS_PER_POINT = 8


def find_series(session: Session, run_id: str, key: str) -> Series | None:
    return session.scalar(select(Series).where(Series.run_id == run_id, Series.key == key))


def lr_series(session: Session, run_ids: Sequence[str]) -> dict[str, Series]:
    """Each run's learning-rate series, however it was named (backend.metrics.keys.lr_key),
    in one query; runs without one are left out."""
    if not run_ids:
        return {}
    by_run: dict[str, dict[str, Series]] = defaultdict(dict)
    for series in session.scalars(select(Series).where(Series.run_id.in_(run_ids))):
        by_run[series.run_id][series.key] = series
    return {run_id: keys[key] for run_id, keys in by_run.items() if (key := lr_key(keys))}


def _as_arrays(rows) -> tuple[np.ndarray, np.ndarray]:
    if not rows:
        return np.empty(0, dtype=np.int64), np.empty(0)
    steps, values = zip(*rows, strict=True)
    vals = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    return np.array(steps, dtype=np.int64), vals


def _raw(session: Session, series_id: int) -> tuple[np.ndarray, np.ndarray]:
    stmt = select(Point.step, Point.value).where(Point.series_id == series_id).order_by(Point.step)
    return _as_arrays(session.execute(stmt).all())


def _block_level(series: Series, max_points: int) -> int | None:
    """The finest block level that keeps the read under budget but finer than the output."""
    span = (series.last_step or 0) - (series.first_step or 0) + 1
    for level in BLOCK_LEVELS:
        n_blocks = span // block_size(level) + 1
        if n_blocks <= MAX_BLOCKS_PER_POINT * max_points:
            return level if n_blocks >= max_points // 2 else None
    return BLOCK_LEVELS[-1]


def _from_blocks(session: Session, series: Series, level: int) -> tuple[np.ndarray, np.ndarray]:
    """Each block's extremes (and first NaN/inf) plus the series' ends, as candidate points."""
    b = PointBlock
    rows = session.execute(
        select(b.min_step, b.min_value, b.max_step, b.max_value, b.nonfinite_step,
               b.nonfinite_value)
        .where(b.series_id == series.id, b.level == level)
    ).all()
    cand: list[tuple[int, float | None]] = [
        (series.first_step, series.first_value), (series.last_step, series.last_value)
    ]
    for mn_s, mn_v, mx_s, mx_v, bad_s, bad_v in rows:
        if mn_s is not None:
            cand += [(mn_s, mn_v), (mx_s, mx_v)]
        if bad_s is not None:
            cand.append((bad_s, bad_v))
    steps, values = _as_arrays(cand)
    steps, first = np.unique(steps, return_index=True)
    return steps, values[first]


def downsampled(
    session: Session, series: Series, max_points: int
) -> tuple[np.ndarray, np.ndarray]:
    """At most `max_points` points of the series with every spike kept (see downsample.py)."""
    level = None if series.count <= max_points else _block_level(series, max_points)
    if level is None:
        steps, values = _raw(session, series.id)
    else:
        steps, values = _from_blocks(session, series, level)
    return minmax_downsample(steps, values, max_points)


def wall_times(session: Session, series_id: int, steps: np.ndarray) -> list[float | None]:
    """The logged wall-clock time (unix seconds) of each of these steps of the series."""
    wanted = steps.tolist()
    if session.get_bind().dialect.name == "postgresql":
        # A join against the unnested steps: one index lookup per step whatever the table's
        # statistics say (an IN list or `= ANY` was planned as a scan of the whole series).
        w = func.unnest(bindparam("steps", wanted, type_=postgresql.ARRAY(BigInteger))
                        ).table_valued("step").render_derived(name="w")
        stmts = [select(Point.step, Point.wall_time).join_from(
            w, Point, and_(Point.series_id == series_id, Point.step == w.c.step))]
    else:  # SQLite caps the parameters of one statement
        base = select(Point.step, Point.wall_time).where(Point.series_id == series_id)
        stmts = [base.where(Point.step.in_(wanted[i:i + 5000]))
                 for i in range(0, len(wanted), 5000)]
    times: dict[int, float | None] = {}
    for stmt in stmts:
        times.update(session.execute(stmt).all())
    return [times.get(s) for s in wanted]


def for_fitting(
    session: Session, series: Series, max_points: int = 2000
) -> tuple[np.ndarray, np.ndarray]:
    """The series averaged into at most `max_points` step buckets (the fit wants means, not
    extremes). A bucket holding a NaN or infinity reads as NaN, so divergence stays visible."""
    if series.count <= max_points:
        return _raw(session, series.id)
    span = (series.last_step or 0) - (series.first_step or 0) + 1
    width = max(1, -(-span // max_points))
    bucket = ((Point.step - series.first_step) / width).cast(Point.step.type)
    # SQLite stores NaN as NULL; Postgres keeps NaN, which avg() propagates by itself.
    mean = case((func.count(Point.value) < func.count(), None), else_=func.avg(Point.value))
    stmt = (
        select(func.avg(Point.step.cast(Double)), mean)
        .where(Point.series_id == series.id)
        .group_by(bucket)
        .order_by(bucket)
    )
    steps, values = _as_arrays(session.execute(stmt).all())
    return steps, values
