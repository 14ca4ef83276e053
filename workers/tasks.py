"""The jobs. Each receives ids, opens its own session, calls workers.forecast, stores results.

They are plain functions of (settings, dispatcher, ids...) so the Celery worker and the
embedded in-process runner execute exactly the same code.
"""

import logging
import math
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
from sqlalchemy import select

from backend.db import session_scope
from backend.forecasts.service import finish_request, requeue_lost_requests, store_forecast
from backend.jobs import FORECAST_SERIES, SWEEP, Dispatcher
from backend.metrics.reads import find_series, for_fitting
from backend.models import Run
from backend.runs.service import mark_stale_runs_crashed
from backend.settings import Settings
from workers.forecast.schedule import Schedule, schedule_from_spec
from workers.forecast.trajectory import ReferenceRun, TrajectoryForecast, forecast_trajectory

log = logging.getLogger("curvecast.worker")

MAX_REFERENCES = 8


def _finite_or_none(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _json_list(arr: np.ndarray) -> list[float | None]:
    return [_finite_or_none(v) for v in np.asarray(arr, dtype=float).tolist()]


def _schedule(run: Run) -> Schedule | None:
    """The run's planned schedule; a named shape without its own length takes the run's."""
    if not run.lr_schedule:
        return None
    spec = dict(run.lr_schedule)
    if "type" in spec and not spec.get("total_steps"):
        spec["total_steps"] = run.total_steps
    try:
        return schedule_from_spec(spec)
    except ValueError:
        log.warning("run %s: unusable lr_schedule %r; forecasting without it", run.id, spec)
        return None


def _references(session, run: Run, key: str) -> list[ReferenceRun]:
    """Finished runs of the same project (and group, when the run has one) with this metric."""
    stmt = (
        select(Run)
        .where(Run.project_id == run.project_id, Run.status == "finished", Run.id != run.id)
        .order_by(Run.updated_at.desc())
        .limit(MAX_REFERENCES)
    )
    if run.group:
        stmt = stmt.where(Run.group == run.group)
    refs = []
    for other in session.scalars(stmt):
        series = find_series(session, other.id, key)
        if series is None or not series.count:
            continue
        steps, values = for_fitting(session, series, max_points=500)
        refs.append(ReferenceRun(
            steps=steps, values=values, total_steps=int(other.total_steps or series.last_step),
            schedule=_schedule(other), name=other.name,
        ))
    return refs


def _fields(fc: TrajectoryForecast, fitted_upto: int) -> dict[str, Any]:
    return {
        "status": fc.status,
        "reason": fc.reason[:512],
        "model": fc.model,
        "params": {k: _finite_or_none(v) for k, v in fc.params.items()},
        "prior": fc.prior,
        "fitted_upto_step": fitted_upto,
        "target_step": fc.target_step,
        "level": fc.level,
        "final_mean": _finite_or_none(fc.final_mean),
        "final_lower": _finite_or_none(fc.final_lower),
        "final_upper": _finite_or_none(fc.final_upper),
        "curve": {
            "step": _json_list(fc.curve_step),
            "mean": _json_list(fc.curve_mean),
            "lower": _json_list(fc.curve_lower),
            "upper": _json_list(fc.curve_upper),
        } if fc.status == "ready" else {},
    }


def forecast_series(settings: Settings, dispatcher: Dispatcher, run_id: str, key: str) -> str:
    """Fit the series' latest points and store the forecast; fit again if data moved on."""
    with session_scope(settings.database_url) as session:
        run = session.get(Run, run_id)
        series = find_series(session, run_id, key) if run else None
        if run is None or series is None:
            return "gone"
        steps, values = for_fitting(session, series)
        fitted_upto = int(series.last_step or 0)
        schedule = _schedule(run)
        target = run.total_steps or (schedule.total_steps if schedule else None)
        if not target:
            store_forecast(session, run_id, key, {
                "status": "insufficient_data", "fitted_upto_step": fitted_upto,
                "reason": "the run has no total_steps: set it (or a schedule) to give a target",
                "curve": {}, "params": {}, "model": None, "target_step": None,
                "final_mean": None, "final_lower": None, "final_upper": None,
            })
        else:
            lr = find_series(session, run_id, "lr")
            lr_steps, lr_values = for_fitting(session, lr) if lr else (None, None)
            fc = forecast_trajectory(
                steps, values, total_steps=int(target), schedule=schedule,
                lr_steps=lr_steps, lr_values=lr_values,
                references=_references(session, run, key),
            )
            store_forecast(session, run_id, key, _fields(fc, fitted_upto))
        done = finish_request(session, series, fitted_upto)
    if not done:
        dispatcher.send(FORECAST_SERIES, run_id, key)
    return "stored"


def sweep(settings: Settings, dispatcher: Dispatcher) -> dict[str, int]:
    """Periodic: silent runs become crashed; lost forecast requests are sent again."""
    with session_scope(settings.database_url) as session:
        crashed = mark_stale_runs_crashed(session, settings.stale_after_s)
        requeued = requeue_lost_requests(session, dispatcher, settings)
    return {"crashed": crashed, "requeued": requeued}


def handlers(settings: Settings, dispatcher: Dispatcher) -> dict[str, Callable[..., object]]:
    """Task name -> callable, for the in-process runner."""
    return {
        FORECAST_SERIES: partial(forecast_series, settings, dispatcher),
        SWEEP: partial(sweep, settings, dispatcher),
    }
