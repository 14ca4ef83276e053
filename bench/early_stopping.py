"""Early stopping: how many steps Curvecast's stop policy saves, and at what cost (issue 6).

    .venv/bin/python -m bench.early_stopping [--orders 6] [--seeds 3] [--servers 2] [--offline]
        [--sources real-lr-seeds,...] [--logged-lr]

Sweeps (bench/sweeps.py: the Luo dev curves grouped by model size and planned length, the
learning-rate sweeps of real runs made here by bench/train_curves.py, tinylm and the held-out
tinylm_long, tinylm_sched and tinylm_seeds, and simulated LR sweeps; `--sources` picks some)
are replayed through the real API, one run after another within a sweep:
every run logs its points in chunks at checkpoints every 5% of its planned steps; from 10% on
it waits for the final forecast of its latest chunk (a provisional one decides no stop) and is
killed (PATCH killed) once the forecast or the ingest answer says should_stop; runs that are
never stopped PATCH finished and become references for the later ones. Each sweep is a group
with its own stop policy (reference best_finished, min_progress 0.1), replayed once per
threshold in its own project.
Optuna's MedianPruner and SuccessiveHalvingPruner see the same checkpoints in the same order
through the ask/tell API, at their default settings and, separately, at the setting of their
knob that never stops a sweep's best run (chosen per source in hindsight) and at the setting
chosen on the other sources (as a user sets a knob from experience). Curvecast's knob is its
threshold: over those replayed (`--thresholds`), it is chosen the same two ways. "hindsight"
knows every final value and is the most a best_finished policy could save ("hindsight>1%"
stops only runs that end over 1% worse: what is left once near-ties, which no early forecast
separates, are let run). Scores per sweep: steps saved, whether the sweep's true best run was
stopped, and regret (best true final among runs that ran to the end minus the true best).
`--logged-lr`: the runs log their lr (from step 0) and give no lr_schedule, as most training
loops do; finished runs are references with the whole lr they logged.
"""

from __future__ import annotations

import argparse
import functools
import logging
import statistics
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from itertools import cycle

import httpx
import numpy as np
import optuna

from backend.forecasts.service import interval_sd
from bench.curves_data import logged_between, logged_lr
from bench.servers import (
    ADMIN_KEY,
    curvecast_server,
    fresh_database,
    loss_rows,
    post_finished,
    wait_forecast,
)
from bench.stop_knobs import (
    Grids,
    Knobs,
    saved,
    threshold_of,
    transferred_settings,
    with_thresholds,
    zero_regret_settings,
)
from bench.sweeps import (
    TINYLM_SETS,
    Sweep,
    SweepRun,
    real_sweeps,
    sim_sweeps,
    tinylm_sweeps,
)
from workers.forecast import stopping
from workers.forecast.schedule import schedule_from_spec
from workers.forecast.trajectory import ReferenceRun, TrajectoryForecast, forecast_trajectory
from workers.tasks import MAX_CANDIDATES

FRACS = np.arange(1, 21) / 20  # checkpoints: every 5% of the planned steps
MIN_PROGRESS = 0.1
WARMUP_CHECKPOINTS = 2  # the baselines may prune from the 10% checkpoint on, like Curvecast
FORECAST_TIMEOUT_S = 120.0


@dataclass
class Outcome:
    steps_run: int
    stopped: bool


@dataclass
class Replay:
    method: str
    sweep: Sweep
    outcomes: list[Outcome]
    waits: list[float] = field(default_factory=list)  # seconds from chunk to its forecast
    timeouts: int = 0


def checkpoints(run: SweepRun) -> list[tuple[float, int, np.ndarray]]:
    """(fraction, checkpoint step, indices of the points logged since the last checkpoint)."""
    out, prev = [], -1
    for frac in FRACS:
        step = int(round(frac * run.total_steps))
        idx = np.flatnonzero((run.steps > prev) & (run.steps <= step))
        out.append((float(frac), step, idx))
        prev = step
    return out


# --- Curvecast, through the API -------------------------------------------------------------

def replay_curvecast(base: str, sweep: Sweep, threshold: float, planned: bool = True
                     ) -> Replay:
    project, group = f"es-t{round(threshold * 100)}", sweep.name
    rep = Replay(f"curvecast@{threshold:g}", sweep, [])
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    with httpx.Client(base_url=base, headers=headers, timeout=60) as c:
        c.put(f"/api/v1/projects/{project}/stop-policy", json={
            "metric": "loss", "mode": "min", "reference": "best_finished",
            "threshold": threshold, "min_progress": MIN_PROGRESS, "group": group,
        }).raise_for_status()
        for run in sweep.runs:
            rid = c.post("/api/v1/runs", json={
                "project": project, "group": group, "name": run.name,
                "total_steps": run.total_steps,
            } | ({"lr_schedule": run.lr_spec} if planned else {})).json()["id"]
            rep.outcomes.append(_log_run(c, rid, run, rep, has_reference=bool(rep.outcomes),
                                         planned=planned))
    return rep


def _log_run(c: httpx.Client, rid: str, run: SweepRun, rep: Replay,
             has_reference: bool, planned: bool = True) -> Outcome:
    """Log `run` chunk by chunk, stopping when told; the sweep's first run has nothing to be
    compared with and is logged in one go. ``planned`` False: each chunk logs the lr too."""
    lr = None if planned else logged_lr(run.lr_spec, run.steps)
    if not has_reference:
        post_finished(c, rid, run.steps, run.loss, lr)
        return Outcome(run.total_steps, False)
    for frac, step, idx in checkpoints(run):
        if not idx.size:
            continue
        since = run.steps[idx[0] - 1] if idx[0] > 0 else -np.inf
        answer = c.post(f"/api/v1/runs/{rid}/metrics", json={"rows": loss_rows(
            run.steps, run.loss, idx,
            None if lr is None else logged_between(lr, since, run.steps[idx[-1]]))})
        answer.raise_for_status()
        stop = answer.json()["should_stop"]
        if MIN_PROGRESS <= frac < 1.0 and not stop:
            start = time.monotonic()
            fc = wait_forecast(c, rid, int(run.steps[idx[-1]]), FORECAST_TIMEOUT_S, every=0.1,
                               final=True)
            rep.waits.append(time.monotonic() - start)
            rep.timeouts += fc is None
            stop = bool(fc and fc.get("should_stop"))
        if stop and frac < 1.0:
            c.patch(f"/api/v1/runs/{rid}", json={"status": "killed"}).raise_for_status()
            return Outcome(step, True)
    c.patch(f"/api/v1/runs/{rid}", json={"status": "finished"}).raise_for_status()
    return Outcome(run.total_steps, False)


# --- Curvecast offline: the same decisions without the service ------------------------------

def _finished(run: SweepRun, refs: list[ReferenceRun]) -> tuple[ReferenceRun, float, float]:
    """A run that ran to the end, as the service values it: its fitted final value and the
    sd of that value's interval (backend.alerts.service.reference_for)."""
    sched = schedule_from_spec(run.lr_spec)
    fc = forecast_trajectory(run.steps, run.loss, total_steps=run.total_steps, schedule=sched,
                             references=refs)
    sd = interval_sd(fc.final_lower, fc.final_upper, fc.level) or 0.0
    return ReferenceRun(run.steps, run.loss, run.total_steps, sched, run.name), fc.final_mean, sd


def replay_offline(sweep: Sweep, threshold: float, planned: bool = True) -> Replay:
    """Curvecast's decisions with forecast_trajectory called directly: at each checkpoint the
    run is forecast with the sweep's finished runs as references (latest first, at most
    MAX_CANDIDATES), judged against the best of them (judged), as workers.tasks does. No
    logging, batching or debouncing, so minutes instead of ten; for trying changes, with the
    API replays as the figures of record. ``planned`` False: the runs log their lr and give
    no plan (judged)."""
    rep = Replay(f"curvecast@{threshold:g}", sweep, [])
    finished: list[tuple[ReferenceRun, float, float]] = []
    for run in sweep.runs:
        refs = [f[0] for f in finished[::-1][:MAX_CANDIDATES]]
        outcome = Outcome(run.total_steps, False)
        best = min(finished, key=lambda f: f[1]) if finished else None
        for _, step, _, decision in judged(run, refs, best, threshold, planned) if best else ():
            if decision.stop:
                outcome = Outcome(step, True)
                break
        if not outcome.stopped:
            finished.append(_finished(run, refs))
        rep.outcomes.append(outcome)
    return rep


def judged(run: SweepRun, refs: list[ReferenceRun], best: tuple[ReferenceRun, float, float],
           threshold: float, planned: bool = True
           ) -> Iterator[tuple[float, int, TrajectoryForecast, stopping.Decision]]:
    """(fraction, step, forecast, decision) at each checkpoint from MIN_PROGRESS on where the
    forecast is ready: the run forecast with ``refs`` as its references and judged against
    ``best`` (a finished run, its fitted final value and that value's sd) as workers.tasks
    does, paired check included. ``planned`` False: from the lr logged so far, no plan."""
    sched = schedule_from_spec(run.lr_spec) if planned else None
    ref, value, sd = best
    for frac, step, _ in checkpoints(run):
        seen = run.steps <= step
        if not MIN_PROGRESS <= frac < 1.0 or not seen.any():
            continue
        steps, loss = run.steps[seen], run.loss[seen]
        lr_steps, lr = (None, None) if planned else logged_lr(run.lr_spec, steps)
        fc = forecast_trajectory(steps, loss, total_steps=run.total_steps, schedule=sched,
                                 lr_steps=lr_steps, lr_values=lr, references=refs)
        if fc.status != "ready":
            continue
        paired = functools.partial(
            stopping.paired_p_underperform, steps, loss, total_steps=run.total_steps,
            schedule=sched, reference=ref, reference_value=value, reference_sd=sd,
            others=[r for r in refs if r is not ref], lr_steps=lr_steps, lr_values=lr)
        yield frac, step, fc, stopping.judge(fc, value, "min", sd, threshold, frac,
                                             MIN_PROGRESS, paired)


def run_offline(sweeps: list[Sweep], thresholds: tuple[float, ...], planned: bool = True
                ) -> list[Replay]:
    jobs = [(s, t, planned) for t in thresholds for s in sweeps]
    with ProcessPoolExecutor() as pool:
        return list(pool.map(replay_offline, *zip(*jobs, strict=True)))


# --- Baselines: Optuna pruners, ask/tell ------------------------------------------------------

def median_pruner(warmup: int = WARMUP_CHECKPOINTS) -> optuna.pruners.BasePruner:
    return optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=warmup)


def asha_pruner(min_resource: int = WARMUP_CHECKPOINTS) -> optuna.pruners.BasePruner:
    # by default rungs at checkpoints 2, 6, 18 (10%, 30%, 90% of the planned steps)
    return optuna.pruners.SuccessiveHalvingPruner(min_resource=min_resource, reduction_factor=3)


# The baselines' one knob each, swept to find the setting that never stops a sweep's best run:
# "more saved than both baselines at equal regret" compares with that setting.
BASELINE_GRIDS: dict[str, tuple[Callable[[int], optuna.pruners.BasePruner], str,
                                 tuple[int, ...]]] = {
    "median": (median_pruner, "warmup", (2, 4, 6, 8, 10, 12, 14, 16, 18)),
    "asha": (asha_pruner, "min_resource", (2, 3, 4, 5, 6)),
}


def replay_hindsight(sweep: Sweep, margin: float = 0.0) -> Replay:
    """The most any best_finished policy could save here: it knows every final value and stops,
    at the first checkpoint it may (10%), each run that ends worse than the best run already
    finished; the others run to the end and become the reference. With ``margin`` (e.g. 0.01)
    only runs that end more than that share worse are stopped: a near-tie is not something a
    forecast from a tenth of a run can tell apart, so this is the bound a policy can aim at."""
    name = f"hindsight>{margin:.0%}" if margin else "hindsight"
    rep, done = Replay(name, sweep, []), []
    for run in sweep.runs:
        if done and run.final > (1.0 + margin) * min(done):
            rep.outcomes.append(Outcome(int(round(MIN_PROGRESS * run.total_steps)), True))
        else:
            rep.outcomes.append(Outcome(run.total_steps, False))
            done.append(run.final)
    return rep


def replay_optuna(name: str, make: Callable[[], optuna.pruners.BasePruner],
                  sweep: Sweep) -> Replay:
    """Each run is a trial; it reports its latest logged loss at every checkpoint (step =
    checkpoint number) and stops when the pruner says so."""
    study = optuna.create_study(direction="minimize", pruner=make(),
                                sampler=optuna.samplers.RandomSampler(seed=0))
    rep = Replay(name, sweep, [])
    for run in sweep.runs:
        trial, outcome = study.ask(), Outcome(run.total_steps, False)
        for k, (frac, step, _) in enumerate(checkpoints(run), start=1):
            seen = np.flatnonzero(run.steps <= step)
            if not seen.size:
                continue
            trial.report(float(run.loss[seen[-1]]), k)
            if frac < 1.0 and trial.should_prune():
                outcome = Outcome(step, True)
                break
        if outcome.stopped:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, float(run.loss[-1]))
        rep.outcomes.append(outcome)
    return rep


# --- Scores ---------------------------------------------------------------------------------

def score(rep: Replay) -> dict:
    runs, outs = rep.sweep.runs, rep.outcomes
    finals = np.array([r.final for r in runs])
    survivors = [r.final for r, o in zip(runs, outs, strict=True) if not o.stopped]
    return {
        "method": rep.method, "source": rep.sweep.source, "kind": rep.sweep.kind,
        "planned": sum(r.total_steps for r in runs), "run": sum(o.steps_run for o in outs),
        "best_stopped": outs[rep.sweep.best].stopped, "n_runs": len(runs),
        "regret": float(min(survivors) - finals.min()),
        "rel_regret": float(min(survivors) / finals.min() - 1.0),
    }


NEAR_TIE = 0.01  # runs ending within 1 % of the best finished: the second hindsight bound
OTHER_METHODS = ("median", "asha", "hindsight", f"hindsight>{NEAR_TIE:.0%}")


def table(scores: list[dict], by: str) -> str:
    head = (f"| {by} | method | sweeps | runs | steps saved | best run stopped | "
            "regret mean | regret max | max regret % |")
    lines = [head, "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    ours = sorted({s["method"] for s in scores if threshold_of(s["method"]) is not None},
                  key=lambda m: -threshold_of(m))
    for key in sorted({s[by] for s in scores}):
        for method in (*ours, *OTHER_METHODS):
            rows = [s for s in scores if s[by] == key and s["method"] == method]
            if not rows:
                continue
            reg = [r["regret"] for r in rows]
            lines.append(
                f"| {key} | {method} | {len(rows)} | {sum(r['n_runs'] for r in rows)} | "
                f"{100 * saved(rows):.1f}% | {sum(r['best_stopped'] for r in rows)} | "
                f"{np.mean(reg):.4f} | {max(reg):.4f} | "
                f"{100 * max(r['rel_regret'] for r in rows):.2f}% |")
    return "\n".join(lines)


def knob_scores(sweeps: list[Sweep], scores: list[dict]) -> tuple[Knobs, Grids]:
    """Every method at every setting of its knob, scored per sweep, by (source, method,
    setting); with each method's (knob name, settings). The baselines are replayed here at
    every setting of BASELINE_GRIDS; Curvecast's knob is its threshold, at those replayed."""
    knobs: Knobs = {(source, name, k): [score(replay_optuna(name, functools.partial(make, k), s))
                                        for s in sweeps if s.source == source]
                    for source in {s.source for s in sweeps}
                    for name, (make, _, settings) in BASELINE_GRIDS.items() for k in settings}
    grids: Grids = {name: (knob, settings)
                    for name, (_, knob, settings) in BASELINE_GRIDS.items()}
    return with_thresholds(knobs, grids, scores)


def run_curvecast(sweeps: list[Sweep], thresholds: tuple[float, ...], servers: int,
                  threads: int, planned: bool = True) -> list[Replay]:
    """Every (sweep, threshold) replay, spread over `servers` embedded servers that share one
    fresh Postgres database (each runs its forecast jobs in its own process)."""
    db = fresh_database("curvecast_early_stopping")
    with ExitStack() as stack:
        bases = [stack.enter_context(curvecast_server(db)) for _ in range(servers)]
        jobs = [(b, s, t) for (s, t), b in zip(
            [(s, t) for t in thresholds for s in sweeps], cycle(bases))]
        jobs.sort(key=lambda j: -len(j[1].runs))  # longest first: no lone straggler at the end
        with ThreadPoolExecutor(threads) as pool:
            return list(pool.map(lambda j: replay_curvecast(*j, planned), jobs))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    # 6: three orders never drew the one that stopped a Luo sweep's best run (2026-12-06).
    ap.add_argument("--orders", type=int, default=6, help="start orders per real group")
    ap.add_argument("--seeds", type=int, default=3, help="simulated sweeps per kind")
    ap.add_argument("--thresholds", type=float, nargs="+", default=[0.9, 0.8])
    ap.add_argument("--servers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--offline", action="store_true",
                    help="decide with forecast_trajectory directly, no server (see replay_offline)")
    ap.add_argument("--sources", default="",
                    help="comma-separated sources to replay (e.g. real-lr-seeds); default all")
    ap.add_argument("--logged-lr", action="store_true",
                    help="runs log their lr and give no lr_schedule")
    args = ap.parse_args()
    optuna.logging.set_verbosity(logging.WARNING)
    sweeps = (real_sweeps(args.orders)
              + [s for name in TINYLM_SETS for s in tinylm_sweeps(args.orders, name=name)]
              + sim_sweeps(args.seeds))
    if args.sources:
        wanted = set(args.sources.split(","))
        if unknown := wanted - {s.source for s in sweeps}:
            ap.error(f"--sources: unknown {', '.join(sorted(unknown))}")
        sweeps = [s for s in sweeps if s.source in wanted]
    print(f"{len(sweeps)} sweeps, {sum(len(s.runs) for s in sweeps)} runs")
    start = time.monotonic()
    replays = (run_offline(sweeps, tuple(args.thresholds), not args.logged_lr) if args.offline
               else run_curvecast(sweeps, tuple(args.thresholds), args.servers, args.threads,
                                  not args.logged_lr))
    wall = time.monotonic() - start
    replays += [replay_optuna(name, make, s) for s in sweeps
                for name, make in (("median", median_pruner), ("asha", asha_pruner))]
    replays += [replay_hindsight(s, m) for s in sweeps for m in (0.0, NEAR_TIE)]
    scores = [score(r) for r in replays]
    print(table(scores, "source"))
    print()
    print(table(scores, "kind"))
    knobs, grids = knob_scores(sweeps, scores)
    print("\nAt zero regret (each method's knob swept, Curvecast's threshold over those "
          "replayed; the best setting that never stops a sweep's best run):")
    print(zero_regret_settings(knobs, grids))
    if len({s.source for s in sweeps}) > 1:
        print("\nEach method with its knob set on the other sources:")
        print(transferred_settings(knobs, grids, scores))
    waits = [w for r in replays for w in r.waits]
    print(f"\nCurvecast replays: {wall:.0f} s wall; {len(waits)} forecasts waited for, "
          f"median {statistics.median(waits or [np.nan]):.2f} s, "
          f"max {max(waits or [np.nan]):.2f} s, {sum(r.timeouts for r in replays)} timeouts")
    for r in replays:  # which runs each method stopped, for reading the table
        stops = [f"{run.name}@{o.steps_run}" for run, o in zip(r.sweep.runs, r.outcomes,
                                                              strict=True) if o.stopped]
        best = r.sweep.runs[r.sweep.best].name
        print(f"  {r.method:14} {r.sweep.name:26} best={best}: stopped {', '.join(stops)}")


if __name__ == "__main__":
    main()
