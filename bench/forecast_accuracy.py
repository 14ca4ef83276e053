"""Forecast accuracy through the real HTTP API, on the dev curves, against two baselines.

    .venv/bin/python -m bench.forecast_accuracy [--models 25M,100M,400M] [--logged-lr]

A fresh `curvecast up` on Postgres (in-process jobs). For each dev run: cold, its project holds
only this run; warm, its project also holds the other runs of the same model size, finished.
The run logs its first 25%, 50% and 75% of the planned steps (as a training loop would, one
after the other); after each, the benchmark waits for the stored final forecast (a prefix
posted in several requests can first be shown provisionally) and compares its final value
with the run's true final loss (error, 90% coverage, mean interval score). The last-value and
power-law baselines are computed on the same prefixes in the same run. ``--logged-lr``: the
runs give no lr_schedule and log their lr beside the loss (from step 0), as most training
loops do; the forecast then reads the plan off the logged lr where it can.
"""

from __future__ import annotations

import argparse
import time
import uuid

import httpx
import numpy as np

from bench.curves_data import (
    CUTS,
    LUO,
    DevRun,
    baseline_rows,
    format_table,
    interval_score,
    load_curves,
    logged_between,
    logged_lr,
    rel_err,
    select_models,
)
from bench.servers import ADMIN_KEY, curvecast_server, fresh_database, loss_rows, wait_forecast


def post_points(c: httpx.Client, run_id: str, steps: np.ndarray, loss: np.ndarray,
                lr: tuple[np.ndarray, np.ndarray] | None = None) -> None:
    """The loss at ``steps`` and, given as (steps, values), the lr at its own steps."""
    rows = loss_rows(steps, loss, np.arange(len(steps)), lr)
    for i in range(0, len(rows), 10_000):
        c.post(f"/api/v1/runs/{run_id}/metrics", json={"rows": rows[i:i + 10_000]}
               ).raise_for_status()


def new_run(c: httpx.Client, project: str, run: DevRun, planned: bool = True) -> str:
    body = {"project": project, "name": run.run_id, "total_steps": run.target_step,
            "group": run.model} | ({"lr_schedule": run.lr_spec} if planned else {})
    return c.post("/api/v1/runs", json=body).json()["id"]


def replay(c: httpx.Client, run: DevRun, runs: list[DevRun], mode: str,
           planned: bool = True) -> list[dict]:
    project = f"acc-{mode}-{uuid.uuid4().hex[:8]}"
    if mode == "warm":
        for other in runs:
            if other.model == run.model and other.run_id != run.run_id:
                ref = new_run(c, project, other, planned)
                post_points(c, ref, other.steps, other.loss,
                            None if planned else logged_lr(other.lr_spec, other.steps))
                c.patch(f"/api/v1/runs/{ref}", json={"status": "finished"}).raise_for_status()
    run_id, rows, done = new_run(c, project, run, planned), [], 0
    lr = None if planned else logged_lr(run.lr_spec, run.steps)
    for frac in CUTS:
        steps, loss = run.prefix(frac)
        since = -np.inf if done == 0 else steps[done - 1]
        post_points(c, run_id, steps[done:], loss[done:],
                    None if lr is None else logged_between(lr, since, steps[-1]))
        done = len(steps)
        start = time.perf_counter()
        fc = wait_forecast(c, run_id, int(steps[-1]), 120, final=True)
        if fc is None:
            raise RuntimeError(f"no forecast of {run_id} up to step {int(steps[-1])}")
        waited = time.perf_counter() - start
        final = fc.get("final") or {}
        base = {"run": run.run_id, "model": run.model, "family": run.family, "cut": frac}
        rows.append(base | {
            "mode": mode, "err": rel_err(final.get("mean"), run.truth),
            "cov90": (final["lower"] <= run.truth <= final["upper"]) if final else None,
            "score90": interval_score(final.get("lower"), final.get("upper"), run.truth),
            "ms": 1000 * waited, "status": fc["status"]})
        if mode == "cold":
            rows += baseline_rows(base, run, steps, loss)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="", help="comma list of model sizes (default: all)")
    ap.add_argument("--logged-lr", action="store_true",
                    help="runs log their lr and give no lr_schedule")
    args = ap.parse_args()
    runs = select_models(load_curves(LUO), args.models)
    rows: list[dict] = []
    with curvecast_server(fresh_database("curvecast_accuracy")) as base, httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=60) as c:
        for i, run in enumerate(runs):
            for mode in ("cold", "warm"):
                rows += replay(c, run, runs, mode, not args.logged_lr)
            print(f"[{i + 1}/{len(runs)}] {run.run_id}", flush=True)
    metrics = ("err", "cov90", "score90", "ms")
    print(f"\n{len(runs)} runs through the HTTP API (ms = batch answered -> forecast stored)")
    print(format_table(rows, ("mode", "cut"), metrics))
    print()
    ours = [r for r in rows if r["mode"] in ("cold", "warm")]
    print(format_table(ours, ("mode",), ("err", "cov90", "score90")) + "\n(all cuts pooled)")
    print()
    print(format_table(ours, ("mode", "cut", "family"), metrics))
    print()
    print(format_table(ours, ("mode", "cut", "model"), metrics))
    bad = [r for r in rows if r.get("status") not in (None, "ready")]
    if bad:
        print(f"{len(bad)} forecasts not ready: " + ", ".join(
            f"{r['run']}@{r['cut']}:{r['status']}" for r in bad))


if __name__ == "__main__":
    main()
