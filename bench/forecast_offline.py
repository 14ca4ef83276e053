"""Offline forecast accuracy on the dev curves: forecast_trajectory called directly, no server.

    .venv/bin/python -m bench.forecast_offline [--models 25M,100M] [--by family]
        [--source luo|tinylm|tinylm_long|tinylm_sched|tinylm_seeds] [--split train|val]
        [--no-schedule | --logged-lr] [--jobs 2]

Per cut (25/50/75 % of planned steps) and mode (cold: this run only; warm: the other runs of
the same model size, finished, as references): median abs relative error of the final loss,
coverage of the 90% interval, its mean interval score (score90), median ms per forecast; plus
the last-value and power-law baselines on the same prefixes.
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor
from functools import partial

import numpy as np

from bench.curves_data import (
    CUTS,
    SOURCES,
    DevRun,
    baseline_rows,
    format_table,
    interval_score,
    load_curves,
    logged_lr,
    rel_err,
    select_models,
)
from workers.forecast.schedule import Schedule, schedule_from_spec
from workers.forecast.trajectory import ReferenceRun, forecast_trajectory


def schedule_of(run: DevRun, schedules: bool = True) -> Schedule | None:
    """The run's schedule, or None to forecast it as a run that gives none."""
    return schedule_from_spec(run.lr_spec) if schedules else None



def references_for(run: DevRun, runs: list[DevRun], schedules: bool = True
                   ) -> list[ReferenceRun]:
    return [ReferenceRun(r.steps, r.loss, r.target_step, schedule_of(r, schedules), r.run_id)
            for r in runs if r.model == run.model and r.run_id != run.run_id]


def evaluate(runs: list[DevRun], modes: tuple[str, ...] = ("cold", "warm"),
             schedules: bool = True, jobs: int = 1, planned: bool = True) -> list[dict]:
    """``schedules`` False: forecast as runs that neither plan nor log their lr would be.
    ``planned`` False: as runs that log their lr but give no plan (finished references keep
    their whole schedule, which they logged).
    ``jobs`` > 1: runs in that many processes (faster; the ms columns then share the cores)."""
    one = partial(_evaluate_run, runs=runs, modes=modes, schedules=schedules, planned=planned)
    if jobs <= 1:
        per_run = list(map(one, runs))
    else:
        with ProcessPoolExecutor(jobs) as pool:
            per_run = list(pool.map(one, runs))
    return [row for rows in per_run for row in rows]


def _evaluate_run(run: DevRun, runs: list[DevRun], modes: tuple[str, ...],
                  schedules: bool, planned: bool) -> list[dict]:
    rows = []
    for frac in CUTS:
        steps, loss = run.prefix(frac)
        base = {"run": run.run_id, "model": run.model, "family": run.family, "cut": frac}
        for mode in modes:
            refs = references_for(run, runs, schedules) if mode == "warm" else []
            t0, c0 = time.perf_counter(), time.process_time()
            lr_steps, lr_values = (None, None) if planned else logged_lr(run.lr_spec, steps)
            fc = forecast_trajectory(steps, loss, total_steps=run.target_step,
                                     schedule=schedule_of(run, schedules and planned),
                                     lr_steps=lr_steps, lr_values=lr_values, references=refs)
            ms = 1000 * (time.perf_counter() - t0)
            cpu_ms = 1000 * (time.process_time() - c0)
            ok = fc.status == "ready"
            cov = (fc.final_lower <= run.truth <= fc.final_upper) if ok else None
            rows.append(base | {"mode": mode, "err": rel_err(fc.final_mean, run.truth),
                                "cov90": cov, "score90": interval_score(
                                    fc.final_lower, fc.final_upper, run.truth),
                                "ms": ms, "ms_cpu": cpu_ms, "status": fc.status,
                                "model_used": fc.model})
        rows += baseline_rows(base, run, steps, loss)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="", help="comma list of model sizes (default: all)")
    ap.add_argument("--by", default="", help="extra grouping column, e.g. family or model")
    ap.add_argument("--modes", default="cold,warm")
    ap.add_argument("--source", default="luo", choices=sorted(SOURCES))
    ap.add_argument("--split", default="train", help="which loss: train or val")
    plan = ap.add_mutually_exclusive_group()
    plan.add_argument("--no-schedule", action="store_true",
                      help="forecast as if the runs neither planned nor logged their lr")
    plan.add_argument("--logged-lr", action="store_true",
                      help="forecast as if the runs logged their lr but gave no plan")
    ap.add_argument("--jobs", type=int, default=1,
                    help="processes (the ms columns then share the cores: time with 1)")
    args = ap.parse_args()
    runs = select_models(load_curves(SOURCES[args.source], args.split), args.models)
    rows = evaluate(runs, tuple(args.modes.split(",")), schedules=not args.no_schedule,
                    jobs=args.jobs, planned=not args.logged_lr)
    print(f"{len(runs)} runs: " + ", ".join(sorted({r.model for r in runs})))
    metrics = ("err", "cov90", "score90", "ms", "ms_cpu")
    print(format_table(rows, ("mode", "cut"), metrics))
    if args.by:
        print()
        print(format_table(rows, ("mode", "cut", args.by), metrics))
    bad = [r for r in rows if r.get("status") not in (None, "ready")]
    if bad:
        print(f"{len(bad)} forecasts not ready: " + ", ".join(
            f"{r['run']}@{r['cut']}:{r['status']}" for r in bad[:10]))
    errs = [r for r in rows if r["mode"] in ("cold", "warm")]
    worst = sorted(errs, key=lambda r: -np.nan_to_num(r["err"]))[:8]
    print("worst: " + "; ".join(f"{r['mode']} {r['run']}@{r['cut']} {100 * r['err']:.2f}%"
                               for r in worst))


if __name__ == "__main__":
    main()
