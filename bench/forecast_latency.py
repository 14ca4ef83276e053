"""How fast a forecast is: the fit itself, and from a new batch to its forecast.

    .venv/bin/python -m bench.forecast_latency

1. Fit: `forecast_trajectory` (interval included) on a 1,000-point noisy curve with a cosine
   schedule, 20 seeds; anchor in the same run: scipy `curve_fit` of a plain power law on the
   same points (what a schedule-blind tool does). Target: median under 300 ms.
2. Freshness: a run logs a batch, then waits until GET forecast says `fitted_upto_step` is
   that batch's last step; 10 batches each, in the embedded mode (`curvecast up`, SQLite,
   in-process jobs) and with Postgres + Redis + a `curvecast worker` process. Target: 2 s.
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

from bench.servers import ADMIN_KEY, ROOT, WORK, curvecast_server, fresh_database
from workers.forecast.schedule import schedule_from_spec
from workers.forecast.trajectory import forecast_trajectory

TOTAL = 10_000
SCHEDULE = {"type": "cosine", "peak_lr": 3e-4, "warmup_steps": 300, "total_steps": TOTAL,
            "final_lr": 3e-5}


def synthetic(seed: int, n: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """A loss curve that falls with the LR area, observed on the first 60% of a cosine run."""
    sched = schedule_from_spec(SCHEDULE)
    steps = np.linspace(50, 0.6 * TOTAL, n).round()
    area = np.cumsum(sched.lr(np.arange(TOTAL + 1)))[steps.astype(int)] / 3e-4
    loss = 2.0 + 4.0 * (1 + area / 100) ** -0.4
    return steps, loss + np.random.default_rng(seed).normal(0, 0.01, n)


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


def freshness(base: str, batches: int = 10) -> list[float]:
    """Seconds from each batch's answer to a forecast that includes it."""
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    steps, loss = synthetic(0, 2000)
    chunks = np.array_split(np.arange(len(steps)), batches + 1)
    out = []
    with httpx.Client(base_url=base, headers=headers, timeout=30) as c:
        run = c.post("/api/v1/runs", json={"project": "bench-fresh", "total_steps": TOTAL,
                                           "lr_schedule": SCHEDULE}).json()["id"]
        for chunk in chunks:
            rows = [{"step": int(steps[i]), "values": {"loss": float(loss[i])}} for i in chunk]
            c.post(f"/api/v1/runs/{run}/metrics", json={"rows": rows}).raise_for_status()
            start, last = time.perf_counter(), int(steps[chunk[-1]])
            while c.get(f"/api/v1/runs/{run}/forecast/loss").json().get("fitted_upto_step") \
                    != last:
                if time.perf_counter() - start > 60:
                    raise RuntimeError("no fresh forecast within 60 s")
                time.sleep(0.02)
            out.append(time.perf_counter() - start)
    return out[1:]  # the first includes start-up work (imports, first connection)


def main() -> None:
    fits = fit_times()
    print(f"fit of a 1,000-point curve with its interval: median {fits['ours']:.0f} ms; "
          f"plain power-law curve_fit {fits['anchor']:.1f} ms; ratio "
          f"{fits['ours'] / fits['anchor']:.0f}x")
    sqlite = f"sqlite:///{WORK / 'fresh.db'}"
    (WORK / "fresh.db").unlink(missing_ok=True)
    with curvecast_server(sqlite) as base:
        embedded = freshness(base)
    print(f"batch -> forecast, embedded (SQLite, in-process): median "
          f"{statistics.median(embedded):.2f} s, max {max(embedded):.2f} s")
    db, broker = fresh_database("curvecast_fresh"), "redis://127.0.0.1:6379/12"
    with curvecast_server(db, broker) as base:
        env = {**os.environ, "CURVECAST_DATABASE_URL": db, "CURVECAST_BROKER_URL": broker}
        worker = subprocess.Popen([sys.executable, "-m", "backend", "worker"], cwd=ROOT,
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            celery = freshness(base)
        finally:
            worker.terminate()
            worker.wait(30)
    print(f"batch -> forecast, Postgres + Celery worker: median "
          f"{statistics.median(celery):.2f} s, max {max(celery):.2f} s")


if __name__ == "__main__":
    main()
