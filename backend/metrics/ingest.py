"""The set-based, idempotent write of a metrics batch, with its summaries, in one transaction.

Postgres: COPY into a session-local staging table, then one `INSERT ... SELECT ... ON CONFLICT
DO NOTHING RETURNING` into points. SQLite (embedded mode): one multi-row insert with the same
conflict rule. Either way only the rows that were really new come back, and the series
summaries and min/max blocks are merged from those alone, so a retried batch changes nothing.
"""

from dataclasses import dataclass

from sqlalchemy import Double, Table, bindparam, case, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from backend.metrics.rollup import NewPoints, block_deltas, series_deltas
from backend.metrics.validate import Batch
from backend.models import Point, PointBlock, Series

STAGING_DDL = (
    "CREATE TEMP TABLE IF NOT EXISTS cc_staging "
    "(series_id bigint, step bigint, value float8, wall_time float8) ON COMMIT DELETE ROWS"
)
INSERT_FROM_STAGING = (
    "INSERT INTO points (series_id, step, value, wall_time) "
    "SELECT series_id, step, value, wall_time FROM cc_staging "
    "ON CONFLICT DO NOTHING RETURNING series_id, step, value"
)


@dataclass
class IngestResult:
    accepted: int
    duplicates: int
    series_ids: dict[str, int]  # key -> series id, for every key in the batch


def _dialect_insert(session: Session, table: Table):
    name = session.get_bind().dialect.name
    return (postgresql.insert if name == "postgresql" else sqlite.insert)(table)


def series_ids(session: Session, run_id: str, keys: set[str]) -> dict[str, int]:
    """Ids of the run's series for `keys`, creating the missing ones (race-safe)."""
    def existing() -> dict[str, int]:
        stmt = select(Series.key, Series.id).where(Series.run_id == run_id, Series.key.in_(keys))
        return dict(session.execute(stmt).all())

    found = existing()
    missing = keys - found.keys()
    if missing:
        stmt = _dialect_insert(session, Series.__table__).on_conflict_do_nothing(
            index_elements=["run_id", "key"]
        )
        session.execute(
            stmt, [{"run_id": run_id, "key": k, "count": 0, "nonfinite_count": 0} for k in missing]
        )
        found = existing()
    return found


def _insert_points(session: Session, rows: list[tuple]) -> list[tuple]:
    """Insert (series_id, step, value, wall_time) rows; return the new (series_id, step, value)."""
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        pg = conn.connection.driver_connection
        with pg.cursor() as cur:
            cur.execute(STAGING_DDL)
            with cur.copy(
                "COPY cc_staging (series_id, step, value, wall_time) FROM STDIN (FORMAT BINARY)"
            ) as copy:
                copy.set_types(["int8", "int8", "float8", "float8"])
                for row in rows:
                    copy.write_row(row)
            cur.execute(INSERT_FROM_STAGING)
            new = cur.fetchall()
            cur.execute("TRUNCATE cc_staging")
            return new
    stmt = (
        sqlite.insert(Point)
        .on_conflict_do_nothing()
        .returning(Point.series_id, Point.step, Point.value)
    )
    params = [{"series_id": s, "step": st, "value": v, "wall_time": t} for s, st, v, t in rows]
    return [tuple(r) for r in session.execute(stmt, params).all()]


def _merge_series(session: Session, deltas: list[dict]) -> None:
    s = Series.__table__.c
    p = {k: bindparam(f"p_{k}", type_=Double) for k in (
        "first_value", "last_value", "min_value", "max_value")}
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


def write_batch(session: Session, run_id: str, batch: Batch) -> IngestResult:
    """Store a validated batch; returns what was new. Does not commit."""
    ids = series_ids(session, run_id, set(batch.keys))
    rows = [
        (ids[k], st, v, t)
        for k, st, v, t in zip(batch.keys, batch.steps, batch.values, batch.times, strict=True)
    ]
    new = NewPoints.from_rows(_insert_points(session, rows))
    if len(new):
        _merge_series(session, series_deltas(new))
        _merge_blocks(session, block_deltas(new))
    return IngestResult(accepted=len(new), duplicates=len(rows) - len(new), series_ids=ids)

