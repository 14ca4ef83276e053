"""The set-based, idempotent write of a metrics batch, with its summaries, in one transaction.

The batch's series rows are locked first, so batches for one series are written one after
another. Rows past a series' last stored step cannot exist yet: on Postgres they go straight
into `points` with one binary COPY (the fast path of a training loop that appends). Every
other row (a retry, an out-of-order step) goes through a staging table and `INSERT ... ON
CONFLICT DO NOTHING RETURNING`, so only truly new points count. SQLite (embedded mode) takes
the conflict path for everything. The series summaries and min/max blocks are then merged
from the new points alone, so a retried batch changes nothing.
"""

from dataclasses import dataclass

import numpy as np
from sqlalchemy import Table, bindparam, case, cast, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from backend.metrics import pgcopy
from backend.metrics.rollup import NewPoints, block_deltas, series_deltas
from backend.metrics.validate import Batch
from backend.models import Point, PointBlock, Series

POINT_TYPES = ["int8", "int8", "float8", "float8"]
COPY_POINTS = "COPY points (series_id, step, value, wall_time) FROM STDIN (FORMAT BINARY)"
STAGING_DDL = (
    "CREATE TEMP TABLE IF NOT EXISTS cc_staging "
    "(series_id bigint, step bigint, value float8, wall_time float8) ON COMMIT DELETE ROWS"
)
COPY_STAGING = "COPY cc_staging FROM STDIN (FORMAT BINARY)"
INSERT_NEW_FROM_STAGING = (
    "COPY (INSERT INTO points (series_id, step, value, wall_time) "
    "SELECT series_id, step, value, wall_time FROM cc_staging "
    "ON CONFLICT DO NOTHING RETURNING series_id, step, value) TO STDOUT (FORMAT BINARY)"
)


@dataclass
class IngestResult:
    accepted: int
    duplicates: int
    series_ids: dict[str, int]  # key -> series id, for every key in the batch


@dataclass
class Columns:
    """Points as parallel arrays."""

    series_id: np.ndarray
    step: np.ndarray
    value: np.ndarray
    wall_time: np.ndarray

    def take(self, index: np.ndarray) -> "Columns":
        return Columns(self.series_id[index], self.step[index], self.value[index],
                       self.wall_time[index])

    def __len__(self) -> int:
        return len(self.step)


def _dialect_insert(session: Session, table: Table):
    name = session.get_bind().dialect.name
    return (postgresql.insert if name == "postgresql" else sqlite.insert)(table)


def lock_series(session: Session, run_id: str, keys: list[str]) -> dict[str, tuple[int, int]]:
    """key -> (series id, last stored step or -1), creating missing series; the rows stay
    locked until the transaction ends (Postgres), so concurrent batches cannot interleave."""
    def locked() -> dict[str, tuple[int, int]]:
        rows = session.execute(
            select(Series.key, Series.id, Series.last_step)
            .where(Series.run_id == run_id, Series.key.in_(keys))
            .order_by(Series.id)
            .with_for_update()
        ).all()
        return {key: (sid, -1 if last is None else last) for key, sid, last in rows}

    found = locked()
    if missing := [k for k in keys if k not in found]:
        stmt = _dialect_insert(session, Series.__table__).on_conflict_do_nothing(
            index_elements=["run_id", "key"]
        )
        session.execute(
            stmt, [{"run_id": run_id, "key": k, "count": 0, "nonfinite_count": 0} for k in missing]
        )
        found = locked()
    return found


def _columns(batch: Batch, series: dict[str, tuple[int, int]], now: float) -> tuple[
        Columns, np.ndarray]:
    """The batch as arrays, first occurrence of each (series, step) only, and for each row
    whether it lies past its series' last stored step. Rows without a time get `now`."""
    ids = np.array([series[k][0] for k in batch.names], dtype=np.int64)
    last = np.array([series[k][1] for k in batch.names], dtype=np.int64)
    kidx, step = batch.key, batch.step
    times = np.where(np.isnan(batch.time), now, batch.time)
    cols = Columns(ids[kidx], step, batch.value, times)
    order = np.lexsort((np.arange(len(step)), step, cols.series_id))
    sid_o, step_o = cols.series_id[order], step[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = (sid_o[1:] != sid_o[:-1]) | (step_o[1:] != step_o[:-1])
    keep = np.sort(order[first])
    return cols.take(keep), step[keep] > last[kidx[keep]]


def _insert_postgres(session: Session, cols: Columns, appended: np.ndarray) -> NewPoints:
    pg = session.connection().connection.driver_connection
    fresh, maybe = cols.take(appended), cols.take(~appended)
    with pg.cursor() as cur:
        if len(fresh):
            with cur.copy(COPY_POINTS) as copy:
                copy.write(pgcopy.encode(POINT_TYPES, fresh.series_id, fresh.step,
                                         fresh.value, fresh.wall_time))
        returned = [np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0)]
        if len(maybe):
            cur.execute(STAGING_DDL)
            with cur.copy(COPY_STAGING) as copy:
                copy.write(pgcopy.encode(POINT_TYPES, maybe.series_id, maybe.step,
                                         maybe.value, maybe.wall_time))
            payload = bytearray()
            with cur.copy(INSERT_NEW_FROM_STAGING) as copy:
                for chunk in copy:
                    payload += chunk
            returned = pgcopy.decode(["int8", "int8", "float8"], bytes(payload))
    return NewPoints(
        np.concatenate([fresh.series_id, returned[0]]),
        np.concatenate([fresh.step, returned[1]]),
        np.concatenate([fresh.value, returned[2]]),
    )


def _insert_sqlite(session: Session, cols: Columns) -> NewPoints:
    stmt = (
        sqlite.insert(Point)
        .on_conflict_do_nothing()
        .returning(Point.series_id, Point.step, Point.value)
    )
    params = [
        {"series_id": s, "step": st, "value": v, "wall_time": t}
        for s, st, v, t in zip(cols.series_id.tolist(), cols.step.tolist(),
                               cols.value.tolist(), cols.wall_time.tolist(), strict=True)
    ]
    return NewPoints.from_rows([tuple(r) for r in session.execute(stmt, params).all()])


def _merge_series(session: Session, deltas: list[dict]) -> None:
    s = Series.__table__.c
    # Each value binds as its column's type: first/last may be NaN (models.NanDouble). The
    # extremes are NULL in a batch with no finite value of the key, and a NULL that is only
    # compared (`IS NULL`) has no type Postgres can infer: those are cast.
    p = {k: bindparam(f"p_{k}", type_=s[k].type) for k in ("first_value", "last_value")}
    p |= {k: cast(bindparam(f"p_{k}", type_=s[k].type), s[k].type)
          for k in ("min_value", "max_value")}
    fs, ls = bindparam("p_first_step"), bindparam("p_last_step")
    earlier = or_(s.first_step.is_(None), fs < s.first_step)
    later = or_(s.last_step.is_(None), ls >= s.last_step)
    stmt = (
        update(Series.__table__)
        .where(s.id == bindparam("p_series_id"))
        .values(
            count=s.count + bindparam("p_n"),
            nonfinite_count=s.nonfinite_count + bindparam("p_n_nonfinite"),
            first_step=case((earlier, fs), else_=s.first_step),
            first_value=case((earlier, p["first_value"]), else_=s.first_value),
            last_step=case((later, ls), else_=s.last_step),
            last_value=case((later, p["last_value"]), else_=s.last_value),
            min_value=_merged(s.min_value, p["min_value"], lower=True),
            max_value=_merged(s.max_value, p["max_value"], lower=False),
        )
    )
    session.execute(stmt, [{f"p_{k}": v for k, v in d.items()} for d in deltas])


def _merged(old, new, *, lower: bool):
    """The smaller (or larger) of a stored and a new extreme, either of which may be NULL."""
    better = new < old if lower else new > old
    return case((new.is_(None), old), (or_(old.is_(None), better), new), else_=old)


def _merge_blocks(session: Session, rows: list[dict]) -> None:
    stmt = _dialect_insert(session, PointBlock.__table__)
    old, new = PointBlock.__table__.c, stmt.excluded
    take_min = or_(old.min_value.is_(None), new.min_value < old.min_value)
    take_max = or_(old.max_value.is_(None), new.max_value > old.max_value)
    take_bad = or_(old.nonfinite_step.is_(None), new.nonfinite_step < old.nonfinite_step)
    upsert = stmt.on_conflict_do_update(
        index_elements=["series_id", "level", "block"],
        set_={
            "n": old.n + new.n,
            "min_step": case((take_min, new.min_step), else_=old.min_step),
            "min_value": _merged(old.min_value, new.min_value, lower=True),
            "max_step": case((take_max, new.max_step), else_=old.max_step),
            "max_value": _merged(old.max_value, new.max_value, lower=False),
            "nonfinite_step": case((take_bad, new.nonfinite_step), else_=old.nonfinite_step),
            "nonfinite_value": case((take_bad, new.nonfinite_value), else_=old.nonfinite_value),
        },
    )
    session.execute(upsert, rows)


def write_batch(session: Session, run_id: str, batch: Batch, now: float) -> IngestResult:
    """Store a validated batch; returns what was new. Does not commit."""
    series = lock_series(session, run_id, sorted(batch.names))
    cols, appended = _columns(batch, series, now)
    if session.get_bind().dialect.name == "postgresql":
        new = _insert_postgres(session, cols, appended)
    else:
        new = _insert_sqlite(session, cols)
    if len(new):
        _merge_series(session, series_deltas(new))
        _merge_blocks(session, block_deltas(new))
    return IngestResult(
        accepted=len(new),
        duplicates=len(batch.step) - len(new),
        series_ids={k: sid for k, (sid, _) in series.items()},
    )
