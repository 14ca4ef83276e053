"""All ORM tables. The schema itself is made only by the Alembic migrations in migrations/."""

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Double,
    ForeignKey,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

JsonType = JSON().with_variant(JSONB(), "postgresql")
# SQLite's INTEGER PRIMARY KEY autoincrements only when spelled exactly INTEGER.
BigIntId = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """Timestamps in UTC on every backend: SQLite keeps no zone, so it is put back on read."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class _SQLiteDouble(Double):
    """SQLite's double without its bind-side float(), which would turn 'NaN' back into NaN."""

    def bind_processor(self, dialect):
        return None


class NanDouble(TypeDecorator):
    """A nullable double that may hold NaN, where NULL means "no value".

    SQLite stores a NaN REAL as NULL, so on SQLite alone NaN is written as the text 'NaN' (a
    REAL column keeps text that is no number as text) and read back as NaN; infinities are
    REALs there already. Postgres stores and returns NaN itself: nothing changes there, and
    the column is a plain double on both (no migration). Points keep SQLite's NULL for NaN
    instead: a point always has a value, so NULL is unambiguous there, and SQL aggregates
    over points (reads.for_fitting) count the NULLs.
    """

    impl = Double
    cache_ok = True

    def load_dialect_impl(self, dialect):
        return dialect.type_descriptor(_SQLiteDouble() if dialect.name == "sqlite" else Double())

    def process_bind_param(self, value: float | None, dialect) -> float | str | None:
        if dialect.name != "sqlite" or value is None:
            return value
        value = float(value)
        return "NaN" if value != value else value

    def process_result_value(self, value: float | str | None, dialect) -> float | None:
        return float(value) if isinstance(value, str) else value


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JsonType, list[Any]: JsonType}


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ApiKey(Base):
    """A project-scoped key; only its SHA-256 is stored (keys are 128-bit random)."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Run(Base):
    __tablename__ = "runs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(256))
    group: Mapped[str | None] = mapped_column("group_name", String(256), index=True)
    tags: Mapped[list[Any]] = mapped_column(default=list)
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    total_steps: Mapped[int | None] = mapped_column(BigInteger)
    lr_schedule: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    params: Mapped[float | None] = mapped_column(Double)
    tokens_per_step: Mapped[float | None] = mapped_column(Double)
    tokens: Mapped[float | None] = mapped_column(Double)
    status: Mapped[str] = mapped_column(String(16), default="running", index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=utcnow, onupdate=utcnow
    )
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_step: Mapped[int | None] = mapped_column(BigInteger)
    should_stop: Mapped[bool] = mapped_column(Boolean, default=False)
    stop_reason: Mapped[dict[str, Any] | None] = mapped_column(JsonType)


class Series(Base):
    """One metric of one run, with the summary that lists and tables read instead of points."""

    __tablename__ = "series"
    __table_args__ = (UniqueConstraint("run_id", "key"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(256))
    count: Mapped[int] = mapped_column(BigInteger, default=0)
    nonfinite_count: Mapped[int] = mapped_column(BigInteger, default=0)
    first_step: Mapped[int | None] = mapped_column(BigInteger)
    # first/last may be NaN (a diverged run); min/max are over finite values only.
    first_value: Mapped[float | None] = mapped_column(NanDouble)
    last_step: Mapped[int | None] = mapped_column(BigInteger)
    last_value: Mapped[float | None] = mapped_column(NanDouble)
    min_value: Mapped[float | None] = mapped_column(Double)
    max_value: Mapped[float | None] = mapped_column(Double)
    # Set when new points arrive and no forecast job is known to be pending (debounce).
    forecast_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Point(Base):
    """A metric value at a step. (series, step) is the identity that makes retries no-ops."""

    __tablename__ = "points"

    # No foreign key: its per-row check doubled the cost of ingest. Series are only ever
    # removed together with their points.
    series_id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    step: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    # NULL only on SQLite, which cannot store NaN: read back as NaN.
    value: Mapped[float | None] = mapped_column(Double)
    wall_time: Mapped[float | None] = mapped_column(Double)


class PointBlock(Base):
    """Min/max roll-up of a series over aligned step blocks, at a few block sizes.

    Reads of long series merge these instead of scanning every point, and since each block
    keeps where its extremes are, a one-step spike survives any downsampling.
    """

    __tablename__ = "point_blocks"

    series_id: Mapped[int] = mapped_column(BigIntId, primary_key=True)  # no FK, as points
    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    block: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger)
    min_step: Mapped[int | None] = mapped_column(BigInteger)
    min_value: Mapped[float | None] = mapped_column(Double)
    max_step: Mapped[int | None] = mapped_column(BigInteger)
    max_value: Mapped[float | None] = mapped_column(Double)
    nonfinite_step: Mapped[int | None] = mapped_column(BigInteger)
    nonfinite_value: Mapped[float | None] = mapped_column(Double)


class Forecast(Base):
    """The latest forecast of one series (one row per run and key, replaced on each fit)."""

    __tablename__ = "forecasts"
    __table_args__ = (UniqueConstraint("run_id", "key"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(256))
    status: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text, default="")
    model: Mapped[str | None] = mapped_column(String(64))
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    prior: Mapped[str | None] = mapped_column(Text)
    fitted_upto_step: Mapped[int | None] = mapped_column(BigInteger)
    target_step: Mapped[int | None] = mapped_column(BigInteger)
    level: Mapped[float] = mapped_column(Double, default=0.9)
    final_mean: Mapped[float | None] = mapped_column(Double)
    final_lower: Mapped[float | None] = mapped_column(Double)
    final_upper: Mapped[float | None] = mapped_column(Double)
    # The curve's level at the target: final_mean without the batch noise forecast for that
    # step (workers.forecast.shared_noise). A finished run is a reference by its level.
    trend_mean: Mapped[float | None] = mapped_column(Double)
    # Set on a provisional forecast (calibrated on the replays of an earlier progress step, or
    # not yet; the final one follows, and only that one decides a stop: workers.tasks), null
    # on a final one: the last step of the first provisional forecast since the series' last
    # final one, where its replays began to run behind its batches. Bounds how long a run
    # goes without a final forecast (trajectory's provisional_since).
    provisional_since_step: Mapped[int | None] = mapped_column(BigInteger)
    curve: Mapped[dict[str, Any]] = mapped_column(default=dict)
    p_underperform: Mapped[float | None] = mapped_column(Double)
    should_stop: Mapped[bool] = mapped_column(Boolean, default=False)
    fitted_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    @property
    def provisional(self) -> bool:
        """The API's ``provisional``: implied by a provisional_since_step."""
        return self.provisional_since_step is not None


class ScalingFitRow(Base):
    """A scaling-law fit over a project's runs, stored with its inputs and result."""

    __tablename__ = "scaling_fits"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    metric: Mapped[str] = mapped_column(String(256))
    law: Mapped[str] = mapped_column(String(32))
    selector: Mapped[dict[str, Any]] = mapped_column(default=dict)  # {"group", "tags"}
    status: Mapped[str] = mapped_column(String(32), default="pending")
    reason: Mapped[str] = mapped_column(String(512), default="")
    n_runs: Mapped[int] = mapped_column(Integer, default=0)
    inputs: Mapped[list[Any]] = mapped_column(default=list)  # the points the fit used
    result: Mapped[dict[str, Any]] = mapped_column(default=dict)  # params, intervals, draws
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    fitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # When the job was last sent: a fit pending long after it is re-sent by the sweep.
    requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=utcnow)


class StopPolicy(Base):
    """When to tell a run to stop: per project, or per group when `group` is set."""

    __tablename__ = "stop_policies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    group: Mapped[str | None] = mapped_column("group_name", String(256))
    metric: Mapped[str] = mapped_column(String(256))
    mode: Mapped[str] = mapped_column(String(8), default="min")
    reference: Mapped[dict[str, Any]] = mapped_column()  # {"kind": ..., "k"|"target": ...}
    threshold: Mapped[float] = mapped_column(Double, default=0.9)
    min_progress: Mapped[float] = mapped_column(Double, default=0.1)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class AlertRule(Base):
    __tablename__ = "alert_rules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    events: Mapped[list[Any]] = mapped_column()
    channel: Mapped[str] = mapped_column(String(16), default="webhook")  # webhook | slack
    url: Mapped[str] = mapped_column(String(2048))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class RunEvent(Base):
    """A health or decision state a run is in (should_stop, diverged, stalled, ...).

    A row exists while the state holds: entering it fires alerts once, leaving it deletes the
    row so that entering it again alerts again.
    """

    __tablename__ = "run_events"
    __table_args__ = (UniqueConstraint("run_id", "event"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(32))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    entered_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Alert(Base):
    """One notification of one event to one rule's channel, with its delivery record."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    rule_id: Mapped[int] = mapped_column(ForeignKey("alert_rules.id", ondelete="CASCADE"))
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column()
    state: Mapped[str] = mapped_column(String(16), default="pending")  # delivered | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(512))
    fired_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
