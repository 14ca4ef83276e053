"""How fast a forecast is: the fit itself, and from a new batch to its forecast.

    .venv/bin/python -m bench.forecast_latency

1. Fit: `forecast_trajectory` (interval included) on a 1,000-point noisy curve with a cosine
   schedule, 20 seeds; anchor in the same run: scipy `curve_fit` of a plain power law on the
   same points (what a schedule-blind tool does). Target: median under 300 ms.
   Warm: the same curve with WARM_REFERENCES finished runs of the project as references (other
   peak lrs and schedule shapes, 500 points each as the service reads them), forecast at every
   1% of progress from 40% to 60% as batches would arrive; the first forecast in each 5% step
   also replays the references (trajectory._replays), the others reuse those replays.
2. Freshness: a run logs a batch, then waits until GET forecast says `fitted_upto_step` is
   that batch's last step; 10 batches each, in the embedded mode (`curvecast up`, SQLite,
   in-process jobs) and with Postgres + Redis + a `curvecast worker` process, cold (the run
   alone in its project) and warm (WARM_REFERENCES finished runs beside it). Target: 2 s.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time

import httpx
import numpy as np
from scipy.optimize import curve_fit

from bench.servers import (
    ADMIN_KEY,
    ROOT,
    WORK,
    curvecast_server,
    fresh_database,
    wait_forecast,
)
from workers.forecast.schedule import schedule_from_spec
from workers.forecast.trajectory import MAX_REFERENCES, ReferenceRun, forecast_trajectory

TOTAL = 10_000
SCHEDULE = {"type": "cosine", "peak_lr": 3e-4, "warmup_steps": 300, "total_steps": TOTAL,
            "final_lr": 3e-5}


WARM_REFERENCES = MAX_REFERENCES  # the most a forecast uses
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
    """The references as a forecast gets them: 500 points each (the most the service reads)."""
    return [ReferenceRun(steps, loss, TOTAL, schedule_from_spec(spec), f"ref{i}")
            for i, (spec, steps, loss) in enumerate(reference_curves(seed, 500))]


def warm_fit_times(seeds: int = 3) -> dict[str, float]:
    """Per forecast of a run's life from 40% to 60% (every 1%), with references: median over
    all, and median of those that replayed the references (the first in each 5% step)."""
    sched = schedule_from_spec(SCHEDULE)
    times: list[tuple[int, float]] = []  # (progress %, ms)
    for seed in range(seeds):
        refs = finished_references(seed)
        steps, loss = synthetic(seed, 1000)
        for pct in range(40, 61):
            seen = steps <= pct / 100 * TOTAL
            start = time.perf_counter()
            fc = forecast_trajectory(steps[seen], loss[seen], total_steps=TOTAL, schedule=sched,
                                     references=refs)
            times.append((pct, (time.perf_counter() - start) * 1e3))
            assert fc.status == "ready" and fc.prior, fc.reason
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


def _rows(steps: np.ndarray, loss: np.ndarray, idx: np.ndarray) -> list[dict]:
    return [{"step": int(steps[i]), "values": {"loss": float(loss[i])}} for i in idx]


def freshness(base: str, batches: int = 10, warm: bool = False) -> list[float]:
    """Seconds from each batch's answer to a forecast that includes it; ``warm``: the project
    first gets WARM_REFERENCES finished runs, so every forecast uses them."""
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    steps, loss = synthetic(0, 2000)
    chunks = np.array_split(np.arange(len(steps)), batches + 1)
    project = "bench-fresh-warm" if warm else "bench-fresh"
    out = []
    with httpx.Client(base_url=base, headers=headers, timeout=30) as c:
        for spec, r_steps, r_loss in reference_curves(0, 1000) if warm else []:
            ref = c.post("/api/v1/runs", json={"project": project, "total_steps": TOTAL,
                                               "lr_schedule": spec}).json()["id"]
            c.post(f"/api/v1/runs/{ref}/metrics", json={
                "rows": _rows(r_steps, r_loss, np.arange(len(r_steps)))}).raise_for_status()
            c.patch(f"/api/v1/runs/{ref}", json={"status": "finished"}).raise_for_status()
        run = c.post("/api/v1/runs", json={"project": project, "total_steps": TOTAL,
                                           "lr_schedule": SCHEDULE}).json()["id"]
        for chunk in chunks:
            c.post(f"/api/v1/runs/{run}/metrics",
                   json={"rows": _rows(steps, loss, chunk)}).raise_for_status()
            start, last = time.perf_counter(), int(steps[chunk[-1]])
            fc = wait_forecast(c, run, last, timeout=60, every=0.02)
            if fc is None:
                raise RuntimeError("no fresh forecast within 60 s")
            out.append(time.perf_counter() - start)
            if warm and fc["status"] == "ready" and not fc.get("prior"):
                raise RuntimeError("a warm forecast used no reference: not the warm path")
    return out[1:]  # the first includes start-up work (imports, first connection)


def main() -> None:
    fits = fit_times()
    print(f"fit of a 1,000-point curve with its interval: median {fits['ours']:.0f} ms; "
          f"plain power-law curve_fit {fits['anchor']:.1f} ms; ratio "
          f"{fits['ours'] / fits['anchor']:.0f}x")
    warm = warm_fit_times()
    print(f"with {WARM_REFERENCES} finished runs as references, a run's forecasts from 40% to "
          f"60%: median {warm['median']:.0f} ms (ratio to the anchor "
          f"{warm['median'] / fits['anchor']:.0f}x), max {warm['max']:.0f} ms; replaying the "
          f"references (first in a 5% step) median {warm['replaying']:.0f} ms, reusing "
          f"them {warm['reusing']:.0f} ms")
    sqlite = f"sqlite:///{WORK / 'fresh.db'}"
    (WORK / "fresh.db").unlink(missing_ok=True)
    with curvecast_server(sqlite) as base:
        embedded = {warm: freshness(base, warm=warm) for warm in (False, True)}
    report("embedded (SQLite, in-process)", embedded)
    db, broker = fresh_database("curvecast_fresh"), "redis://127.0.0.1:6379/12"
    with curvecast_server(db, broker) as base:
        env = {**os.environ, "CURVECAST_DATABASE_URL": db, "CURVECAST_BROKER_URL": broker}
        worker = subprocess.Popen([sys.executable, "-m", "backend", "worker"], cwd=ROOT,
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            celery = {warm: freshness(base, warm=warm) for warm in (False, True)}
        finally:
            worker.terminate()
            worker.wait(30)
    report("Postgres + Celery worker", celery)


def report(mode: str, seconds: dict[bool, list[float]]) -> None:
    for warm, s in seconds.items():
        print(f"batch -> forecast, {mode}, {'warm' if warm else 'cold'}: median "
              f"{statistics.median(s):.2f} s, max {max(s):.2f} s")


if __name__ == "__main__":
    main()
