"""How fast a forecast is: the fit itself, and from a new batch to its forecast.

    .venv/bin/python -m bench.forecast_latency

1. Fit: `forecast_trajectory` (interval included) on a 1,000-point noisy curve with a cosine
   schedule, 20 seeds; anchor in the same run: scipy `curve_fit` of a plain power law on the
   same points (what a schedule-blind tool does). Target: median under 300 ms.
   Warm: the same curve with WARM_REFERENCES finished runs of the project as references (other
   peak lrs and schedule shapes, 1,000 points each, read as the run is), forecast at every
   1% of progress from 40% to 60% as batches would arrive; the first forecast in each 5% step
   also replays the references (trajectory._replays), the others reuse those replays.
   Warm, real: the same on real curves (bench/data/tinylm_sched), 14 finished runs offered.
2. Freshness: a run logs a batch, then waits until GET forecast says `fitted_upto_step` is
   that batch's last step; 10 batches each, in the embedded mode (`curvecast up`, SQLite,
   in-process jobs) and with Postgres + Redis + a `curvecast worker` process, cold (the run
   alone in its project), warm (WARM_REFERENCES synthetic finished runs beside it) and warm,
   real (a tinylm_sched run beside the set's 14 others). Those batches are ~9 % of the run
   apart, so every one enters a new 5 % step: it is shown by a provisional forecast, which
   leans on a step up to 20 % back where one was replayed (trajectory.LEAN_STEPS) and is not
   calibrated where none was, while the new step's replays are made. The warm real case
   again with each batch posted once the last one's final forecast (the one that decides a
   stop) is stored, as evaluations spread over a run come: the seconds to the forecast shown
   and to the final one; and so again with batches 25 % apart, where no step is replayed
   near enough to lean on (FAR_ENDS). The real run again in 100 batches of 1 %, each posted
   as soon as the last one shows (the whole run in ~30 s: batches come faster than a new
   step's fits can be made between them), and again no sooner than CADENCE_S apart. A batch
   entering a new step is shown at once by a provisional forecast, whose fits follow between
   batches (workers.tasks: forecast_series). Target: 2 s. Also the round trip of every GET
   made while waiting: how responsive the API stays while it fits (in the embedded mode the
   fits run in a child process of the API's, workers.offload).
"""

from __future__ import annotations

import statistics
import time

import httpx
import numpy as np
from scipy.optimize import curve_fit

from bench.curves_data import SOURCES, load_curves
from bench.forecast_offline import references_for, schedule_of
from bench.servers import (
    ADMIN_KEY,
    WORK,
    celery_worker,
    curvecast_server,
    fresh_database,
    loss_rows,
    post_finished,
    wait_forecast,
)
from workers.forecast.schedule import Schedule, schedule_from_spec
from workers.forecast.trajectory import MAX_REFERENCES, ReferenceRun, forecast_trajectory

TOTAL = 10_000
SCHEDULE = {"type": "cosine", "peak_lr": 3e-4, "warmup_steps": 300, "total_steps": TOTAL,
            "final_lr": 3e-5}


WARM_REFERENCES = MAX_REFERENCES  # the most a forecast uses
REALISTIC_BATCHES = 100  # 1 % of the run each: a trainer of 30 steps/s flushing every second
# Those batches again, no sooner than this apart: the whole run in under a minute, faster than
# any real one, yet enough for a worker to make a new 5 % step's fits between its batches.
CADENCE_S = 0.5
# Batches ending at these shares of the run: each 25 % on from the last, past the steps a
# provisional forecast leans on (trajectory.LEAN_STEPS), so none has a step replayed near
# enough (the worst case, as a run's first forecast beside finished runs is).
FAR_ENDS = (0.1, 0.35, 0.6, 0.85)
# The references: the run's cosine and three other shapes, each at two peak lrs.
REFERENCE_SPECS = [{**SCHEDULE, "type": shape, "peak_lr": peak,
                    **({"decay_start": 8_000} if shape == "wsd" else {})}
                   for shape in ("cosine", "wsd", "constant", "linear") for peak in (2e-4, 5e-4)]


def synthetic(seed: int, n: int = 1000, spec: dict = SCHEDULE,
              upto: float = 0.6) -> tuple[np.ndarray, np.ndarray]:
    """A loss curve that falls with the LR area and drops as the lr decays, observed on the
    first ``upto`` of its steps."""
    sched = schedule_from_spec(spec)
    steps = np.linspace(50, upto * TOTAL, n).round()
    lr = sched.lr(np.arange(TOTAL + 1))
    area = np.cumsum(lr)[steps.astype(int)] / 3e-4
    decayed = 1.0 - lr[steps.astype(int)] / spec["peak_lr"]
    loss = 2.0 + 4.0 * (1 + area / 100) ** -0.4 - 0.1 * np.clip(decayed, 0.0, 1.0)
    return steps, loss + np.random.default_rng(seed).normal(0, 0.01, n)


def reference_curves(seed: int, n: int) -> list[tuple[dict, np.ndarray, np.ndarray]]:
    """WARM_REFERENCES finished runs as (schedule spec, steps, loss), n points each."""
    return [(spec, *synthetic(1000 * seed + i + 1, n, spec, upto=1.0))
            for i, spec in enumerate(REFERENCE_SPECS[:WARM_REFERENCES])]


def finished_references(seed: int) -> list[ReferenceRun]:
    """The references as a forecast gets them: logged as the run is, 1,000 points each (the
    service reads up to 2,000 a series, the run's and the references' alike)."""
    return [ReferenceRun(steps, loss, TOTAL, schedule_from_spec(spec), f"ref{i}")
            for i, (spec, steps, loss) in enumerate(reference_curves(seed, 1000))]


def warm_fit_times(seeds: int = 3) -> dict[str, float]:
    """Per forecast of a synthetic run's life from 40% to 60% (every 1%), with references."""
    sched = schedule_from_spec(SCHEDULE)
    times: list[tuple[int, float]] = []
    for seed in range(seeds):
        steps, loss = synthetic(seed, 1000)
        times += _life_times(steps, loss, TOTAL, sched, finished_references(seed))
    return _summary(times)


def real_warm_fit_times(every: int = 3) -> dict[str, float]:
    """The same on real curves: every ``every``-th run of bench/data/tinylm_sched (15 runs of
    one model, 3,000 steps), with the set's 14 other runs offered as the finished runs of its
    project (the service offers up to 16 and a forecast uses the nearest MAX_REFERENCES, so
    the set used can change from one 5% step to the next). One process, as a worker is: the
    memos carry over from run to run."""
    runs = load_curves(SOURCES["tinylm_sched"], "train")
    times: list[tuple[int, float]] = []
    for run in runs[::every]:
        refs = references_for(run, runs)
        times += _life_times(run.steps, run.loss, run.target_step, schedule_of(run), refs)
    return _summary(times)


def _life_times(steps: np.ndarray, loss: np.ndarray, total: int, sched: Schedule | None,
                refs: list[ReferenceRun]) -> list[tuple[int, float]]:
    """(progress %, ms) of each forecast of a run from 40% to 60% of ``total``, every 1%."""
    times = []
    for pct in range(40, 61):
        seen = steps <= pct / 100 * total
        start = time.perf_counter()
        fc = forecast_trajectory(steps[seen], loss[seen], total_steps=total, schedule=sched,
                                 references=refs)
        times.append((pct, (time.perf_counter() - start) * 1e3))
        assert fc.status == "ready" and fc.prior, fc.reason
    return times


def _summary(times: list[tuple[int, float]]) -> dict[str, float]:
    """Median over all, and median of the forecasts that replayed the references (the first
    in each 5% step) and of those that reused them."""
    every = [ms for _, ms in times]
    return {"median": statistics.median(every), "max": max(every),
            "replaying": statistics.median([ms for pct, ms in times if pct % 5 == 0]),
            "reusing": statistics.median([ms for pct, ms in times if pct % 5])}


def fit_times() -> dict[str, float]:
    sched = schedule_from_spec(SCHEDULE)
    ours, anchor = [], []
    for seed in range(20):
        steps, loss = synthetic(seed)
        start = time.perf_counter()
        fc = forecast_trajectory(steps, loss, total_steps=TOTAL, schedule=sched, seed=seed)
        ours.append((time.perf_counter() - start) * 1e3)
        assert fc.status == "ready", fc.reason
        start = time.perf_counter()
        curve_fit(lambda x, e, a, k: e + a * x**-k, steps, loss, p0=[1.5, 10, 0.5],
                  bounds=([0, 0, 0], [10, 1e6, 3]), maxfev=20000)
        anchor.append((time.perf_counter() - start) * 1e3)
    return {"ours": statistics.median(ours), "anchor": statistics.median(anchor)}


Logged = tuple[dict, np.ndarray, np.ndarray, int]  # (lr_schedule spec, steps, loss, total)


def freshness_cases() -> dict[str, tuple[Logged, list[Logged]]]:
    """The runs whose freshness is measured, each with its project's finished runs: a
    synthetic run alone (cold) and beside WARM_REFERENCES synthetic runs (warm), and a real
    run beside the 14 other runs of its set (bench/data/tinylm_sched)."""
    synthetic_run = (SCHEDULE, *synthetic(0, 2000), TOTAL)
    synthetic_refs = [(spec, steps, loss, TOTAL) for spec, steps, loss in reference_curves(0, 1000)]
    real = {r.run_id: (r.lr_spec, r.steps, r.loss, r.target_step)
            for r in load_curves(SOURCES["tinylm_sched"], "train")}
    pick = "d128_linear_lr0.0032"  # a run whose nearest references change along its life
    return {"cold": (synthetic_run, []), "warm": (synthetic_run, synthetic_refs),
            "warm, real": (real[pick], [v for k, v in real.items() if k != pick])}


def freshness(base: str, project: str, run: Logged, refs: list[Logged],
              batches: int = 10, answered: list[float] | None = None,
              every: float = 0.0, finals: list[float] | None = None,
              ends: tuple[float, ...] = ()) -> list[float]:
    """Seconds from each batch's answer to a forecast that includes it; ``refs``: the
    project first gets these finished runs, and every forecast must then use them;
    ``answered`` gets the round trip of every poll made while waiting (the API's
    responsiveness while it fits). Each batch is posted once the previous one's forecast
    shows and, with ``every``, no sooner than ``every`` seconds after the previous one;
    with ``finals``, once its final forecast shows, whose seconds go there. ``ends``: the
    batches end at these shares of the run (else ``batches`` + 1 even ones)."""
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    spec, steps, loss, total = run
    chunks = (np.split(np.arange(len(steps)), np.searchsorted(steps, np.multiply(ends, total),
                                                             side="right"))[:len(ends)]
              if ends else np.array_split(np.arange(len(steps)), batches + 1))
    out, to_final = [], []
    with httpx.Client(base_url=base, headers=headers, timeout=30) as c:
        for r_spec, r_steps, r_loss, r_total in refs:
            ref = c.post("/api/v1/runs", json={"project": project, "total_steps": r_total,
                                               "lr_schedule": r_spec}).json()["id"]
            post_finished(c, ref, r_steps, r_loss)
        run_id = c.post("/api/v1/runs", json={"project": project, "total_steps": total,
                                              "lr_schedule": spec}).json()["id"]
        for chunk in chunks:
            if out:
                time.sleep(max(0.0, every - out[-1]))
            c.post(f"/api/v1/runs/{run_id}/metrics",
                   json={"rows": loss_rows(steps, loss, chunk)}).raise_for_status()
            start, last = time.perf_counter(), int(steps[chunk[-1]])
            fc = wait_forecast(c, run_id, last, timeout=60, every=0.02, answered=answered)
            if fc is None:
                raise RuntimeError("no fresh forecast within 60 s")
            out.append(time.perf_counter() - start)
            if finals is not None:
                if wait_forecast(c, run_id, last, 60, 0.02, answered, final=True) is None:
                    raise RuntimeError("no final forecast within 60 s")
                to_final.append(time.perf_counter() - start)
            if refs and fc["status"] == "ready" and not fc.get("prior"):
                raise RuntimeError("a warm forecast used no reference: not the warm path")
    # The first batch's times include start-up work (imports, first connection).
    if finals is not None:
        finals.extend(to_final[1:])
    return out[1:]


def freshness_all(base: str) -> tuple[dict[str, list[float]], list[float]]:
    """Batch -> forecast seconds per case (10 batches each; the real run's spaced batches to
    the forecast shown and to the final one; the real run again in REALISTIC_BATCHES), and
    the round trips of the polls made meanwhile."""
    answered: list[float] = []
    cases = freshness_cases()
    out = {case: freshness(base, f"bench-fresh-{case.replace(', ', '-')}", run, refs,
                           answered=answered)
           for case, (run, refs) in cases.items()}
    finals: list[float] = []
    out["warm, real, spaced: shown"] = freshness(
        base, "bench-fresh-warm-real-spaced", *cases["warm, real"], answered=answered,
        finals=finals)
    out["warm, real, spaced: final"] = finals
    finals = []
    out["warm, real, 25 % apart: shown"] = freshness(
        base, "bench-fresh-warm-real-far", *cases["warm, real"], answered=answered,
        finals=finals, ends=FAR_ENDS)
    out["warm, real, 25 % apart: final"] = finals
    out["warm, real, 1% batches"] = freshness(base, "bench-fresh-warm-real-1pc",
                                              *cases["warm, real"], batches=REALISTIC_BATCHES,
                                              answered=answered)
    out[f"warm, real, 1% batches every {CADENCE_S:g} s"] = freshness(
        base, "bench-fresh-warm-real-1pc-clock", *cases["warm, real"],
        batches=REALISTIC_BATCHES, answered=answered, every=CADENCE_S)
    return out, answered


def main() -> None:
    fits = fit_times()
    print(f"fit of a 1,000-point curve with its interval: median {fits['ours']:.0f} ms; "
          f"plain power-law curve_fit {fits['anchor']:.1f} ms; ratio "
          f"{fits['ours'] / fits['anchor']:.0f}x")
    for what, warm in ((f"{WARM_REFERENCES} synthetic finished runs", warm_fit_times()),
                       ("real finished runs (tinylm_sched, 14 offered)", real_warm_fit_times())):
        print(f"with {what} as references, a run's forecasts from 40% to 60%: median "
              f"{warm['median']:.0f} ms (ratio to the anchor "
              f"{warm['median'] / fits['anchor']:.0f}x), max {warm['max']:.0f} ms; replaying "
              f"the references (first in a 5% step) median {warm['replaying']:.0f} ms, "
              f"reusing them {warm['reusing']:.0f} ms")
    sqlite = f"sqlite:///{WORK / 'fresh.db'}"
    (WORK / "fresh.db").unlink(missing_ok=True)
    with curvecast_server(sqlite) as base:
        embedded = freshness_all(base)
    report("embedded (SQLite, in-process)", embedded, fits["anchor"])
    db, broker = fresh_database("curvecast_fresh"), "redis://127.0.0.1:6379/12"
    with curvecast_server(db, broker) as base, celery_worker(db, broker, log_name="fresh-worker"):
        celery = freshness_all(base)
    report("Postgres + Celery worker", celery, fits["anchor"])


def report(mode: str, measured: tuple[dict[str, list[float]], list[float]],
           anchor_ms: float) -> None:
    """Each case's seconds, the median also as a ratio to the anchor (the day's machine speed:
    it varied 2.6x between two sessions)."""
    seconds, answered = measured
    for case, s in seconds.items():
        median = statistics.median(s)
        print(f"batch -> forecast, {mode}, {case}: median {median:.2f} s "
              f"({median * 1e3 / anchor_ms:.0f}x the anchor), p90 {np.quantile(s, 0.9):.2f} s, "
              f"max {max(s):.2f} s ({len(s)} batches)")
    ms = np.array(answered) * 1e3
    print(f"GET forecast while waiting, {mode}: median {np.median(ms):.1f} ms, "
          f"p95 {np.quantile(ms, 0.95):.1f} ms, max {ms.max():.0f} ms ({len(ms)} polls)")


if __name__ == "__main__":
    main()
