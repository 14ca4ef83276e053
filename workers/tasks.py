"""The jobs. Each receives ids, opens its own session, calls workers.forecast, stores results.

They are plain functions of (settings, dispatcher, ids...) so the Celery worker and the
embedded in-process runner execute exactly the same code.
"""

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import numpy as np
from psycopg.errors import IdleInTransactionSessionTimeout
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

from backend.alerts.service import (
    Reference,
    policy_for,
    record_decision,
    reference_for,
    resend_due_alerts,
    set_event,
)
from backend.db import session_scope
from backend.forecasts.service import (
    finish_request,
    hold_request,
    requeue_lost_requests,
    store_forecast,
    stored_state,
)
from backend.jobs import DELIVER_ALERT, FIT_SCALING, FORECAST_SERIES, SWEEP, Dispatcher
from backend.metrics.reads import find_series, for_fitting, lr_series
from backend.models import Run, Series, StopPolicy
from backend.runs.service import mark_stale_runs_crashed
from backend.scaling.service import requeue_lost_fits
from backend.settings import Settings
from workers import offload
from workers.delivery import deliver_alert
from workers.forecast import stopping
from workers.forecast.memo import Memo
from workers.forecast.schedule import Schedule, schedule_from_logged, schedule_from_spec
from workers.forecast.trajectory import (
    MAX_REFERENCES,
    ReferenceRun,
    TrajectoryForecast,
    forecast_trajectory,
    replay_ahead,
)
from workers.scaling_tasks import fit_scaling_job

log = logging.getLogger("curvecast.worker")
R = TypeVar("R")

# How long a forecast job waits, in turn, for an unreachable database before it gives up
# (forecast_series): about half a minute, a restart's worth, not an outage's.
DB_RETRY_S = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0)

# Finished runs offered to a forecast as references; it uses the MAX_REFERENCES most like the
# run among them (trajectory.py), so a big group is not limited to its latest few.
MAX_CANDIDATES = 2 * MAX_REFERENCES


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


def _references(session: Session, run: Run, key: str) -> list[ReferenceRun]:
    """The latest MAX_CANDIDATES finished runs of the same project (and group, when the run
    has one) that logged `key`, offered as priors. Runs and series come from one join, so the
    limit counts only runs with points for this metric (newer runs without it cannot crowd out
    older ones that have it) and there is no query per candidate; then one points read per
    reference."""
    stmt = (
        select(Run, Series)
        .join(Series, Series.run_id == Run.id)
        .where(Run.project_id == run.project_id, Run.status == "finished", Run.id != run.id,
               Series.key == key, Series.count > 0)
        .order_by(Run.updated_at.desc())
        .limit(MAX_CANDIDATES)
    )
    if run.group:
        stmt = stmt.where(Run.group == run.group)
    return _reference_runs(session, list(session.execute(stmt)))


# Reference runs as read from the database, by what they were read from. A stored point is
# never replaced (ingest inserts with ON CONFLICT DO NOTHING) and a series is removed only
# with its points, so a series' id and point count (in its database) name its points
# exactly: a run that gained points is a new key, never a stale hit. Every forecast of a
# group reads the same finished runs: read anew, 14 of them cost 8-9 ms of a job's 84 ms and
# 14 of its 23 queries (bench/RESULTS.md, 2026-12-07).
_READ: Memo[ReferenceRun] = Memo(4 * MAX_CANDIDATES)


def _reference_runs(session: Session, rows: list[tuple[Run, Series]]) -> list[ReferenceRun]:
    """Finished runs (with their series of the metric) as priors. A run without an
    lr_schedule has the lr it logged as its whole schedule (a user who logs the lr need not
    also describe it); those lr series are found in one query for all the runs."""
    lrs = lr_series(session, [run.id for run, _ in rows if not run.lr_schedule])
    refs = []
    for run, series in rows:
        lr = lrs.get(run.id)
        key = repr((str(session.get_bind().url), run.id, run.name, run.total_steps,
                    run.lr_schedule, series.id, series.count, lr and (lr.id, lr.count))).encode()
        refs.append(_READ.get(key, partial(_reference_run, session, run, series, lr)))
    return refs


def _reference_run(session: Session, run: Run, series: Series,
                   lr: Series | None) -> ReferenceRun:
    """One finished run as a prior, read from the database as the run's own series is (at
    most 2,000 points, bucket means beyond): runs that log the same steps then pair point for
    point, which shared_noise needs."""
    steps, values = for_fitting(session, series)
    total = int(run.total_steps or series.last_step)
    schedule = _schedule(run)
    if schedule is None and lr is not None:
        lr_steps, lr_values = for_fitting(session, lr)
        if np.isfinite(lr_values).any():
            schedule = schedule_from_logged(lr_steps, lr_values, None, total)
    return ReferenceRun(steps=steps, values=values, total_steps=total, schedule=schedule,
                        name=run.name, run_id=run.id)


@dataclass(frozen=True)
class _Inputs:
    """What a run's forecast is made from; the stop decision's paired check reuses it."""

    steps: np.ndarray
    values: np.ndarray
    total_steps: int
    schedule: Schedule | None
    lr_steps: np.ndarray | None
    lr_values: np.ndarray | None
    references: list[ReferenceRun]

    def forecast(self, provisional_since: int | None) -> TrajectoryForecast:
        """The forecast, provisional where the run's new progress step is not replayed yet
        (``provisional_since``: Forecast.provisional_since_step of the stored forecast)."""
        return self._call(forecast_trajectory, provisional_ok=True,
                          provisional_since=provisional_since)

    def replay_ahead(self) -> bool:
        """One of the fits a provisional forecast lacks; whether none is left."""
        return self._call(replay_ahead)

    def _call(self, fn: Callable[..., R], **extra: object) -> R:
        """``fn`` of these inputs (forecast_trajectory's arguments), where fits run."""
        return offload.call(
            fn, self.steps, self.values, total_steps=self.total_steps, schedule=self.schedule,
            lr_steps=self.lr_steps, lr_values=self.lr_values, references=self.references,
            **extra)


def _fields(fc: TrajectoryForecast, fitted_upto: int, since: int | None) -> dict[str, Any]:
    """The stored forecast's columns; ``since``: the provisional_since_step of the forecast
    it replaces (a provisional forecast carries it on, or starts it)."""
    return {
        "status": fc.status,
        "reason": fc.reason[:512],
        "model": fc.model,
        "params": {k: _finite_or_none(v) for k, v in fc.params.items()},
        "prior": fc.prior,
        "provisional_since_step": (fitted_upto if since is None else since) if (
            fc.provisional) else None,
        "fitted_upto_step": fitted_upto,
        "target_step": fc.target_step,
        "level": fc.level,
        "final_mean": _finite_or_none(fc.final_mean),
        "final_lower": _finite_or_none(fc.final_lower),
        "final_upper": _finite_or_none(fc.final_upper),
        "trend_mean": _finite_or_none(fc.trend_mean),
        "curve": {
            "step": _json_list(fc.curve_step),
            "mean": _json_list(fc.curve_mean),
            "lower": _json_list(fc.curve_lower),
            "upper": _json_list(fc.curve_upper),
        } | ({} if fc.curve_lr is None else {"lr": _json_list(fc.curve_lr)})
        if fc.status == "ready" else {},
    }


@dataclass(frozen=True)
class _StopInputs:
    """What a stop decision is judged against, read before any fitting."""

    policy: StopPolicy
    reference: Reference
    # The reference as a finished run, for the paired check; None: a target value, or a run
    # that can no longer be read.
    reference_run: ReferenceRun | None


def _stop_inputs(session: Session, run: Run, key: str,
                 inputs: _Inputs) -> _StopInputs | None:
    """The run's stop policy on this metric and its reference; None without either. The
    reference run is usually among the forecast's candidates already; only an older one is
    read, and read now, though the paired check may not be consulted: no read is left for
    after the fits (backend.db.IDLE_IN_TRANSACTION_MS)."""
    policy = policy_for(session, run)
    if policy is None or policy.metric != key:
        return None
    reference = reference_for(session, run, policy)
    if reference is None:
        return None
    ref = None
    if reference.run_id:
        ref = (next((r for r in inputs.references if r.run_id == reference.run_id), None)
               or _finished_run(session, reference.run_id, key))
    return _StopInputs(policy, reference, ref)


def _finished_run(session: Session, run_id: str, key: str) -> ReferenceRun | None:
    """One run by id as a prior; None where it or its series is gone or empty."""
    run = session.get(Run, run_id)
    series = find_series(session, run_id, key) if run is not None else None
    if run is None or series is None or not series.count:
        return None
    return _reference_runs(session, [(run, series)])[0]


def _paired(stop: _StopInputs, inputs: _Inputs) -> float:
    """P(underperform) against the reference run as it looked at this run's progress
    (stopping.paired_p_underperform); NaN where that comparison cannot be made."""
    ref = stop.reference_run
    if ref is None:
        return float("nan")
    return offload.call(
        stopping.paired_p_underperform, inputs.steps, inputs.values,
        total_steps=inputs.total_steps, schedule=inputs.schedule, lr_steps=inputs.lr_steps,
        lr_values=inputs.lr_values, reference=ref, reference_value=stop.reference.value,
        others=[r for r in inputs.references if r.run_id != ref.run_id],
        mode=stop.policy.mode, reference_sd=stop.reference.sd)


def _stop_decision(run: Run, key: str, fc: TrajectoryForecast, inputs: _Inputs,
                   stop: _StopInputs) -> tuple[StopPolicy, stopping.Decision, dict] | None:
    """The stop policy's decision on this metric and its reasons, or None on a forecast
    that is not ready. Fits only (the paired check may fit two more forecasts): everything
    it reads is in ``stop``."""
    policy, reference = stop.policy, stop.reference
    if fc.status != "ready":
        return None
    progress = (run.last_step or 0) / max(fc.target_step, 1)
    d = stopping.judge(
        fc, reference.value, policy.mode, reference.sd, policy.threshold, progress,
        policy.min_progress,
        partial(_paired, stop, inputs) if reference.run_id else None)
    drawn = fc.checked_samples if d.on_level else fc.decision_samples
    reason = {"metric": key,
              "forecast": {"mean": fc.final_mean, "lower": fc.final_lower,
                           "upper": fc.final_upper, "level": fc.level,
                           "target_step": fc.target_step},
              "reference": reference.value, "reference_label": reference.label,
              "reference_sd": reference.sd, "p_underperform": _finite_or_none(d.p),
              "p_forecast": _finite_or_none(d.p_forecast),
              "p_paired": _finite_or_none(d.p_paired), "threshold": policy.threshold,
              "progress": progress, "min_progress": policy.min_progress,
              "decay_guessed": fc.decay_guessed, "lr_held": fc.lr_held,
              # The band of the draws p was computed on: with finished runs as priors, the pool
              # of the two ways (with them, and the curve alone), wider than the forecast's own
              # band; else, or where the paired check stood in for an even pool, the curve's
              # level, whose band lacks the logged points' scatter.
              # Its mean too: the forecast's own mean is of the value to be logged, which batch
              # noise shared with finished runs can move off the level (shared_noise).
              "decided_on": _band(drawn, fc.level)
              | {"of": "level" if d.on_level else fc.decision_of,
                 "mean": float(np.mean(drawn))}}
    return policy, d, reason


def _band(draws: np.ndarray, level: float) -> dict[str, float]:
    lo, hi = np.quantile(draws, [(1.0 - level) / 2.0, (1.0 + level) / 2.0])
    return {"lower": float(lo), "upper": float(hi), "level": level}


def _record(session, settings: Settings, dispatcher: Dispatcher, run: Run, key: str,
            fc: TrajectoryForecast, fields: dict[str, Any],
            decision: tuple[StopPolicy, stopping.Decision, dict] | None) -> None:
    """Health events from the fit, then the stop decision (if any) on the run."""
    set_event(session, dispatcher, settings.public_url, run, "diverged",
              fc.status == "diverged", {"metric": key, "reason": fc.reason})
    if decision is None:
        return
    policy, d, reason = decision
    fields["p_underperform"], fields["should_stop"] = _finite_or_none(d.p), d.stop
    record_decision(session, dispatcher, settings.public_url, run, d.stop, reason)
    if policy.reference["kind"] == "target":
        set_event(session, dispatcher, settings.public_url, run, "missed_target",
                  bool(d.p > 0.5), reason)


def forecast_series(settings: Settings, dispatcher: Dispatcher, run_id: str, key: str,
                    replaying: int = 0) -> str:
    """Fit the series' latest points and store the forecast; fit again if data moved on.

    A run entering a new 5% progress step is first forecast provisionally (its finished runs
    replayed as at an earlier step, or not yet replayed: trajectory.forecast_trajectory's
    provisional_ok), which
    shows its new points in a fraction of the time. The request then stays pending, and
    ``replaying`` jobs follow: each first shows the points that came since the last forecast
    (provisionally), then makes the new step's joint fits and replays one at a time
    (trajectory.replay_ahead) until newer points come or none is left, when it stores the
    final forecast.

    Writes take the series row before the run row, the order ingest uses, so the two never
    deadlock. A job that fails clears its request, so the next batch asks again at once; but
    with the database gone it can clear nothing, and every later batch would then find the
    request still pending until the sweep re-sent it (forecast_requeue_after_s, 2 min by
    default): so while the database is unreachable the job waits for it, DB_RETRY_S in all.
    A job whose session the server ended (_database_lost) is made again the same way.
    """
    for wait in DB_RETRY_S:
        try:
            return _forecast_series(settings, dispatcher, run_id, key, replaying)
        except DBAPIError as exc:
            if not _database_lost(exc):
                raise
            log.warning("database lost (%s); forecast of %s/%s again in %g s",
                        type(exc.orig).__name__, run_id, key, wait)
            time.sleep(wait)
    return _forecast_series(settings, dispatcher, run_id, key, replaying)  # its error is the job's


def _database_lost(exc: DBAPIError) -> bool:
    """The database is unreachable, or the server ended this job's session for idling in a
    transaction (a worker frozen mid-job and resumed: backend.db.IDLE_IN_TRANSACTION_MS);
    either way the job is worth making again."""
    return (isinstance(exc, OperationalError)
            or isinstance(exc.orig, IdleInTransactionSessionTimeout))


def _forecast_series(settings: Settings, dispatcher: Dispatcher, run_id: str, key: str,
                     replaying: int) -> str:
    try:
        with session_scope(settings.database_url) as session:
            outcome = _forecast(session, settings, dispatcher, run_id, key, bool(replaying))
    except Exception:
        with session_scope(settings.database_url) as session:
            series = find_series(session, run_id, key)
            if series is not None:
                series.forecast_requested_at = None
        raise
    if outcome == "moved on":
        dispatcher.send(FORECAST_SERIES, run_id, key)
    elif outcome in ("provisional", "replaying"):
        dispatcher.send(FORECAST_SERIES, run_id, key, 1)
    return outcome


def _forecast(session, settings: Settings, dispatcher: Dispatcher, run_id: str,
              key: str, replaying: bool) -> str:
    run = session.get(Run, run_id)
    series = find_series(session, run_id, key) if run else None
    if run is None or series is None:
        return "gone"
    steps, values = for_fitting(session, series)
    fitted_upto = int(series.last_step or 0)
    schedule = _schedule(run)
    target = run.total_steps or (schedule.total_steps if schedule else None)
    fc = decision = since = None
    if target:
        lr = lr_series(session, [run_id]).get(run_id)
        lr_steps, lr_values = for_fitting(session, lr) if lr else (None, None)
        inputs = _Inputs(steps, values, int(target), schedule, lr_steps, lr_values,
                         _references(session, run, key))
        stop = _stop_inputs(session, run, key, inputs)
        shown, since = stored_state(session, run_id, key)
        # The reads' transaction ends before the fits: a job holds none open while it
        # computes for seconds (backend.db.IDLE_IN_TRANSACTION_MS would end it).
        session.commit()
        if replaying and shown == fitted_upto and not _make_fits_ahead(session, series, inputs,
                                                                    fitted_upto):
            hold_request(session, series)  # newer points came: the next job shows them first
            return "replaying"
        fc = inputs.forecast(since)
        # A stop is decided on final forecasts only: a provisional one is calibrated on an
        # earlier step's replays or not yet at all (trajectory.LEAN_STEPS), and a client
        # that ended its loop cannot take the stop back. The final one follows within
        # seconds; till then the last decision stands.
        decision = _stop_decision(run, key, fc, inputs, stop) if (
            stop and not fc.provisional) else None
    # Either locks the series row first; a provisional forecast leaves the request pending.
    if fc is not None and fc.provisional:
        hold_request(session, series)
        outcome = "provisional"
    else:
        outcome = "stored" if finish_request(session, series, fitted_upto) else "moved on"
    if fc is None:
        store_forecast(session, run_id, key, {
            "status": "insufficient_data", "fitted_upto_step": fitted_upto,
            "reason": "the run has no total_steps: set it (or a schedule) to give a target",
            "curve": {}, "params": {}, "model": None, "target_step": None,
            "final_mean": None, "final_lower": None, "final_upper": None, "trend_mean": None,
            "provisional_since_step": None,
        })
    else:
        fields = _fields(fc, fitted_upto, since)
        _record(session, settings, dispatcher, run, key, fc, fields, decision)
        store_forecast(session, run_id, key, fields)
    if replaying and outcome == "provisional":
        # Shown; then one of the fits it lacks, so that a run whose batches come faster than
        # its forecasts still gets its final forecast.
        session.commit()
        inputs.replay_ahead()
    return outcome


def _make_fits_ahead(session: Session, series: Series, inputs: _Inputs,
                     fitted_upto: int) -> bool:
    """The fits a provisional forecast lacks, one at a time, until none is left (True) or the
    series has points past ``fitted_upto`` (False): a new batch waits for one fit at most."""
    while not inputs.replay_ahead():
        last = session.scalar(select(Series.last_step).where(Series.id == series.id))
        session.commit()
        if last is not None and last > fitted_upto:
            return False
    return True


def sweep(settings: Settings, dispatcher: Dispatcher) -> dict[str, int]:
    """Periodic: silent runs become crashed (a `stalled` event); lost forecast requests and
    alerts due for a retry are sent again."""
    with session_scope(settings.database_url) as session:
        requeued = requeue_lost_requests(session, dispatcher, settings)  # series before runs
        requeued += requeue_lost_fits(session, dispatcher, settings.forecast_requeue_after_s)
        crashed = mark_stale_runs_crashed(session, settings.stale_after_s)
        for run in crashed:
            set_event(session, dispatcher, settings.public_url, run, "stalled", True,
                      {"reason": f"no heartbeat or metrics for {settings.stale_after_s:.0f} s",
                       "last_seen": run.last_seen.isoformat()})
        resent = resend_due_alerts(session, dispatcher)
    return {"crashed": len(crashed), "requeued": requeued, "alerts_resent": resent}


def handlers(settings: Settings, dispatcher: Dispatcher) -> dict[str, Callable[..., object]]:
    """Task name -> callable, for the in-process runner."""
    return {
        FORECAST_SERIES: partial(forecast_series, settings, dispatcher),
        SWEEP: partial(sweep, settings, dispatcher),
        DELIVER_ALERT: partial(deliver_alert, settings),
        FIT_SCALING: partial(fit_scaling_job, settings, dispatcher),
    }
