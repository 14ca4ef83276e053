"""Forecast requests (debounced), stored forecasts and their reading. Knows no curve maths:
the fitting happens in workers/, which store their result through `store_forecast`."""

import math
from datetime import timedelta
from statistics import NormalDist
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from backend.jobs import FORECAST_SERIES, Dispatcher, enqueue_after_commit
from backend.metrics.keys import is_loss_key
from backend.models import Forecast, Run, Series, utcnow
from backend.settings import Settings


def is_forecast_key(run: Run, key: str) -> bool:
    """A loss however it is named (`loss`, `val_loss`, `eval/loss`: backend.metrics.keys), or
    a key the run's config lists under `forecast_metrics`."""
    listed = (run.config or {}).get("forecast_metrics")
    return is_loss_key(key) or (isinstance(listed, list) and key in listed)


def request_forecasts(
    session: Session, dispatcher: Dispatcher, settings: Settings, run: Run, ids: dict[str, int]
) -> None:
    """Ask for a fit of each forecastable series that got new points, at most one pending.

    A series whose request is older than `forecast_requeue_after_s` is treated as lost (a
    crashed worker or broker) and asked again.
    """
    wanted = [sid for key, sid in ids.items() if is_forecast_key(run, key)]
    if not wanted:
        return
    now = utcnow()
    cutoff = now - timedelta(seconds=settings.forecast_requeue_after_s)
    claimed = session.execute(
        update(Series)
        .where(
            Series.id.in_(wanted),
            or_(Series.forecast_requested_at.is_(None), Series.forecast_requested_at < cutoff),
        )
        .values(forecast_requested_at=now)
        .returning(Series.key)
        .execution_options(synchronize_session=False)
    ).scalars()
    for key in claimed:
        enqueue_after_commit(session, dispatcher, FORECAST_SERIES, run.id, key)


def requeue_lost_requests(
    session: Session, dispatcher: Dispatcher, settings: Settings
) -> int:
    """Re-send forecast requests that never finished (the sweep calls this)."""
    now = utcnow()
    cutoff = now - timedelta(seconds=settings.forecast_requeue_after_s)
    rows = session.execute(
        update(Series)
        .where(Series.forecast_requested_at < cutoff)
        .values(forecast_requested_at=now)
        .returning(Series.run_id, Series.key)
        .execution_options(synchronize_session=False)
    ).all()
    for run_id, key in rows:
        enqueue_after_commit(session, dispatcher, FORECAST_SERIES, run_id, key)
    return len(rows)


def interval_sd(lower: float | None, upper: float | None, level: float | None) -> float | None:
    """The sd of a normal whose central ``level`` interval is [lower, upper]: how well a stored
    forecast knows its final value. None without a proper interval."""
    if lower is None or upper is None or not level:
        return None
    if not (math.isfinite(lower) and math.isfinite(upper) and upper > lower):
        return None
    return (upper - lower) / (2.0 * NormalDist().inv_cdf(0.5 + level / 2.0))


def store_forecast(session: Session, run_id: str, key: str, fields: dict[str, Any]) -> Forecast:
    """Replace the series' forecast with a new one (one row per run and key)."""
    row = session.scalar(select(Forecast).where(Forecast.run_id == run_id, Forecast.key == key))
    if row is None:
        row = Forecast(run_id=run_id, key=key)
        session.add(row)
    for name, value in fields.items():
        setattr(row, name, value)
    row.fitted_at = utcnow()
    session.flush()
    return row


def finish_request(session: Session, series: Series, fitted_upto_step: int | None) -> bool:
    """Clear the series' pending request unless newer points arrived during the fit.

    Returns True when it was cleared; False means the caller should fit again.
    """
    cleared = session.execute(
        update(Series)
        .where(
            Series.id == series.id,
            or_(Series.last_step.is_(None), Series.last_step <= (fitted_upto_step or -1)),
        )
        .values(forecast_requested_at=None)
        .execution_options(synchronize_session=False)
    )
    return bool(cleared.rowcount)


def hold_request(session: Session, series: Series) -> None:
    """Keep the series' request pending for the job this one hands over to (a provisional
    forecast's replaying jobs), renewing its time: the sweep takes a request pending for
    forecast_requeue_after_s for lost, and a live chain of jobs is not. Locks the series row
    as finish_request does, so the job's later writes take it before the run row, the order
    ingest uses."""
    session.execute(
        update(Series)
        .where(Series.id == series.id)
        .values(forecast_requested_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def stored_state(session: Session, run_id: str, key: str) -> tuple[int | None, int | None]:
    """The last step the stored forecast of the series was fitted to (None without one), and
    where that forecast is provisional, the step the series' forecasts have been provisional
    since (Forecast.provisional_since_step)."""
    row = session.execute(select(Forecast.fitted_upto_step, Forecast.provisional_since_step)
                          .where(Forecast.run_id == run_id, Forecast.key == key)).first()
    return (None, None) if row is None else (row[0], row[1])


def read_forecast(session: Session, run: Run, series: Series) -> dict[str, Any]:
    """The API.md forecast body for a series: stored, pending or insufficient_data."""
    row = session.scalar(
        select(Forecast).where(Forecast.run_id == run.id, Forecast.key == series.key)
    )
    if row is None:
        if series.forecast_requested_at is not None:
            return {"status": "pending", "reason": "the first fit is queued",
                    "target_step": run.total_steps}
        reason = (
            "not a forecast metric: add it to the run's config 'forecast_metrics'"
            if not is_forecast_key(run, series.key)
            else "no forecast yet"
        )
        return {"status": "insufficient_data", "reason": reason, "target_step": run.total_steps}
    return {
        "status": row.status,
        "reason": row.reason,
        "fitted_upto_step": row.fitted_upto_step,
        "target_step": row.target_step,
        "model": row.model,
        "params": row.params,
        "prior": row.prior,
        "provisional": row.provisional,
        "final": None if row.final_mean is None else {
            "mean": row.final_mean, "lower": row.final_lower, "upper": row.final_upper,
            "level": row.level,
        },
        "curve": row.curve or None,
        "p_underperform": row.p_underperform,
        "should_stop": row.should_stop,
        "fitted_at": row.fitted_at,
        "stale": (series.last_step or 0) > (row.fitted_upto_step or 0),
    }
