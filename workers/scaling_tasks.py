"""The scaling-fit job: collect the selected runs' points, fit the law, store the result.

A loss law gets one point per run: N = run.params, D = run.tokens (else tokens_per_step times
the steps trained) and the run's final value of the metric, read from the series summary, so
no raw points are loaded. Unfinished runs count only when the request asks for them, at their
stored forecast's final mean with the forecast's spread as their uncertainty. A hyperparameter
law ("hparam:<key>") groups finished runs into sweeps by (N, D), takes each sweep's optimum and
fits a power law through the optima.
"""

import logging
import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.db import session_scope
from backend.forecasts.service import interval_sd
from backend.jobs import Dispatcher
from backend.models import Forecast, Run, ScalingFitRow, Series, utcnow
from backend.scaling.schemas import HPARAM_PREFIX
from backend.settings import Settings
from workers import offload
from workers.forecast.scaling import ScalingPoint, fit_scaling
from workers.forecast.scaling_hparams import fit_hparam_law, sweep_optimum

log = logging.getLogger("curvecast.worker")

# Killed and crashed runs still have a meaningful forecast of where they were heading; a failed
# run usually failed by diverging, so its forecast is not evidence about the configuration.
UNFINISHED = ("running", "crashed", "killed")


def _finite(x: Any) -> float | None:
    """A positive finite number from a column or a config value, else None."""
    if isinstance(x, bool) or not isinstance(x, int | float):
        return None
    return float(x) if math.isfinite(x) and x > 0 else None


def _json_safe(obj: Any) -> Any:
    """Non-finite floats become null: JSONB refuses NaN, and a NaN is no information anyway."""
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    return obj


def _selected_runs(session: Session, row: ScalingFitRow) -> list[Run]:
    """The project's runs in the selector's group carrying all its tags (tags are JSON, so
    they are matched here: the same on Postgres and SQLite)."""
    stmt = select(Run).where(Run.project_id == row.project_id).order_by(Run.created_at, Run.id)
    if row.selector.get("group") is not None:
        stmt = stmt.where(Run.group == row.selector["group"])
    tags = set(row.selector.get("tags") or [])
    return [r for r in session.scalars(stmt) if tags <= set(r.tags or [])]


def _by_run(session: Session, model: type[Series] | type[Forecast], runs: Iterable[Run],
            key: str) -> dict[str, Any]:
    ids = [r.id for r in runs]
    rows = session.scalars(select(model).where(model.run_id.in_(ids), model.key == key))
    return {r.run_id: r for r in rows}


def _tokens(run: Run, steps: int | None) -> float | None:
    """D: the run's own token count, else tokens per step times the steps trained."""
    if _finite(run.tokens):
        return float(run.tokens)
    tps = _finite(run.tokens_per_step)
    return tps * steps if tps and steps else None


def _point(run: Run, loss: float, tokens: float, loss_sd: float | None = None) -> ScalingPoint:
    cfg = run.config or {}
    return ScalingPoint(
        params=float(run.params), tokens=tokens, loss=loss, loss_sd=loss_sd, run_id=run.id,
        flops=_finite(cfg.get("flops")), unique_tokens=_finite(cfg.get("unique_tokens")),
        epochs=_finite(cfg.get("epochs")),
    )


def _loss_points(
    session: Session, row: ScalingFitRow, runs: list[Run]
) -> tuple[list[ScalingPoint], Counter[str]]:
    """One point per usable run, and a count of the runs left out by why."""
    include_unfinished = bool(row.selector.get("include_unfinished"))
    finals = _by_run(session, Series, runs, row.metric)
    forecasts = _by_run(session, Forecast, runs, row.metric) if include_unfinished else {}
    points: list[ScalingPoint] = []
    skipped: Counter[str] = Counter()
    for run in runs:
        if run.status != "finished" and not (include_unfinished and run.status in UNFINISHED):
            skipped[f"{run.status} (not finished)"] += 1
            continue
        if _finite(run.params) is None:
            skipped["without params"] += 1
            continue
        if run.status == "finished":
            series = finals.get(run.id)
            loss = _finite(series.last_value) if series else None
            steps = run.last_step or (series.last_step if series else None)
            loss_sd = None
        else:
            fc = forecasts.get(run.id)
            ready = fc is not None and fc.status == "ready"
            loss = _finite(fc.final_mean) if ready else None
            steps = fc.target_step if ready else None
            loss_sd = interval_sd(fc.final_lower, fc.final_upper, fc.level) if ready else None
        if loss is None:
            what = "final" if run.status == "finished" else "ready forecast of"
            skipped[f"without a {what} {row.metric}"] += 1
            continue
        tokens = _tokens(run, steps)
        if tokens is None:
            skipped["without tokens or tokens_per_step"] += 1
            continue
        points.append(_point(run, loss, tokens, loss_sd))
    return points, skipped


def _skip_note(skipped: Counter[str]) -> str:
    if not skipped:
        return ""
    parts = ", ".join(f"{n} {why}" for why, n in sorted(skipped.items()))
    return f"; runs left out: {parts}"


def _fit_loss_law(session: Session, row: ScalingFitRow, runs: list[Run]) -> dict[str, Any]:
    points, skipped = _loss_points(session, row, runs)
    session.commit()  # no transaction open while fitting (backend.db.IDLE_IN_TRANSACTION_MS)
    fit = offload.call(fit_scaling, points, row.law)
    result = fit.to_dict()
    # A bootstrap refit that wandered off to non-finite values carries no information.
    result["draws"] = [d for d in result["draws"] if all(math.isfinite(v) for v in d)]
    inputs = [
        {"run_id": p.run_id, "params": p.params, "tokens": p.tokens, "loss": p.loss,
         "loss_sd": p.loss_sd, "flops": p.flops, "unique_tokens": p.unique_tokens,
         "epochs": p.epochs, "source": "final" if p.loss_sd is None else "forecast"}
        for p in points
    ]
    return {"status": fit.status, "reason": fit.reason + _skip_note(skipped),
            "n_runs": fit.n_points, "inputs": inputs, "result": result}


def _sweeps(
    session: Session, row: ScalingFitRow, runs: list[Run], hparam: str
) -> tuple[dict[tuple[float, float], list[tuple[float, float, str]]], Counter[str]]:
    """Finished runs grouped by (N, D) into (hp value, final metric, run id) sweeps."""
    finals = _by_run(session, Series, runs, row.metric)
    sweeps: dict[tuple[float, float], list[tuple[float, float, str]]] = defaultdict(list)
    skipped: Counter[str] = Counter()
    for run in runs:
        series = finals.get(run.id)
        steps = run.last_step or (series.last_step if series else None)
        tokens, hp = _tokens(run, steps), _finite((run.config or {}).get(hparam))
        if run.status != "finished":
            skipped[f"{run.status} (not finished)"] += 1
        elif _finite(run.params) is None or tokens is None:
            skipped["without params or tokens"] += 1
        elif hp is None:
            skipped[f"without a numeric config[{hparam!r}]"] += 1
        elif series is None or series.last_value is None:
            skipped[f"without a final {row.metric}"] += 1
        else:
            # Grouped at 6 significant digits: D from tokens_per_step * steps is not exact.
            key = (float(f"{run.params:.6g}"), float(f"{tokens:.6g}"))
            # A diverged run (NaN/inf loss) stays in: sweep_optimum drops it as a bad value.
            sweeps[key].append((hp, series.last_value, run.id))
    return sweeps, skipped


def _fit_hparam_law(session: Session, row: ScalingFitRow, runs: list[Run]) -> dict[str, Any]:
    hparam = row.law.removeprefix(HPARAM_PREFIX)
    sweeps, skipped = _sweeps(session, row, runs, hparam)
    inputs, optima = [], []
    for (n, d), members in sorted(sweeps.items()):
        opt = sweep_optimum([m[0] for m in members], [m[1] for m in members])
        inputs.append({"params": n, "tokens": d, **opt, "run_ids": [m[2] for m in members],
                       "values": [[m[0], m[1]] for m in members]})
        if opt["status"] == "ready":
            optima.append((n, d, opt["optimum"], len(members)))
    # Fit only the terms the sweeps can identify: one model size says nothing about N.
    uses = tuple(u for u, col in (("params", 0), ("tokens", 1))
                 if len({o[col] for o in optima}) > 1) or ("params", "tokens")
    session.commit()  # no transaction open while fitting (backend.db.IDLE_IN_TRANSACTION_MS)
    law = offload.call(fit_hparam_law, [o[:3] for o in optima], uses=uses)
    unusable = Counter(i["status"] for i in inputs if i["status"] != "ready")
    note = "".join(f"; {n} sweeps {why}" for why, n in sorted(unusable.items()))
    if unusable:
        note += " (not used: their optimum is not located)"
    return {"status": law.status, "reason": law.reason + note + _skip_note(skipped),
            "n_runs": sum(o[3] for o in optima), "inputs": inputs, "result": law.to_dict()}


def fit_scaling_job(settings: Settings, dispatcher: Dispatcher, fit_id: int) -> str:
    """Fit the stored request `fit_id` and store its result; returns the fit's status.

    `dispatcher` is unused (this job sends no follow-up work) but every job takes one, so the
    Celery worker and the in-process runner call them all alike. A fit that raises is stored
    as `failed` rather than left `pending` forever.
    """
    del dispatcher
    with session_scope(settings.database_url) as session:
        row = session.get(ScalingFitRow, fit_id)
        if row is None:
            return "gone"
        runs = _selected_runs(session, row)
        fit = _fit_hparam_law if row.law.startswith(HPARAM_PREFIX) else _fit_loss_law
        try:
            fields = fit(session, row, runs)
        except Exception:
            log.exception("scaling fit %s failed", fit_id)
            fields = {"status": "failed", "reason": "the fit raised an unexpected error; "
                      "the worker's log has the details", "inputs": [], "result": {}}
        fields = _json_safe(fields)
        fields["reason"] = fields["reason"][:512]
        for name, value in fields.items():
            setattr(row, name, value)
        row.fitted_at = utcnow()
        return row.status
