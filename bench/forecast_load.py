"""Freshness under load: a sweep's runs logging at once, as on a lab's cluster (issue 4).

    .venv/bin/python -m bench.forecast_load [--runs 8] [--interval 1.0] [--concurrency 1 2]

bench.forecast_latency measures one run logging alone. Here a project holds the first
REFERENCES runs of a real sweep (bench/data/tinylm_sched, 3,000 steps each) as finished runs,
and ``--runs`` of the others log at once, each its whole curve in BATCHES batches, one every
``--interval`` seconds, without waiting for any forecast, as training jobs do. Per batch: the
seconds from its answer until GET forecast covers it (a later forecast covers the batches
before it too: a fit takes the run's latest data). Anchor in the same run, same server: one
of those runs logging alone. Modes: embedded (`curvecast up`: SQLite, its fits in one child
process) and Postgres + Redis + `curvecast worker --concurrency N` for each N given.
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import numpy as np
import redis

from bench.curves_data import SOURCES, DevRun, load_curves
from bench.servers import (
    ADMIN_KEY,
    WORK,
    celery_worker,
    curvecast_server,
    fresh_database,
    loss_rows,
    post_finished,
)

REFERENCES = 6
BATCHES = 20
POLL_S = 0.2  # how often each run asks for its forecast (a dashboard asks far less)
DRAIN_S = 60.0  # after its last batch, how long a run waits for a forecast of it


@dataclass
class Logged:
    """One live run's batches: seconds to a covering forecast, and those never covered."""

    fresh: list[float]
    uncovered: int


def _create(c: httpx.Client, project: str, run: DevRun) -> str:
    r = c.post("/api/v1/runs", json={"project": project, "name": run.run_id,
                                     "total_steps": run.target_step, "lr_schedule": run.lr_spec})
    r.raise_for_status()
    return r.json()["id"]


def _poll(c: httpx.Client, rid: str, pending: list[tuple[int, float]], until: float,
          fresh: list[float]) -> None:
    """Ask for the forecast every POLL_S until ``until`` or until nothing is pending; each
    pending (last step, answered at) batch it covers is timed."""
    while pending and time.perf_counter() < until:
        r = c.get(f"/api/v1/runs/{rid}/forecast/loss")
        upto = r.json().get("fitted_upto_step") if r.status_code == 200 else None
        now = time.perf_counter()
        if upto is not None:
            fresh += [now - at for last, at in pending if last <= upto]
            pending[:] = [(last, at) for last, at in pending if last > upto]
        time.sleep(POLL_S)


def live(base: str, project: str, run: DevRun, interval: float, start: float) -> Logged:
    """``run`` logged batch by batch from ``start`` on, every ``interval`` seconds."""
    fresh: list[float] = []
    pending: list[tuple[int, float]] = []
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {ADMIN_KEY}"},
                      timeout=60) as c:
        rid = _create(c, project, run)
        for k, chunk in enumerate(np.array_split(np.arange(len(run.steps)), BATCHES)):
            time.sleep(max(start + k * interval - time.perf_counter(), 0.0))
            c.post(f"/api/v1/runs/{rid}/metrics",
                   json={"rows": loss_rows(run.steps, run.loss, chunk)}).raise_for_status()
            pending.append((int(run.steps[chunk[-1]]), time.perf_counter()))
            _poll(c, rid, pending, start + (k + 1) * interval, fresh)
        _poll(c, rid, pending, time.perf_counter() + DRAIN_S, fresh)
    return Logged(fresh[1:], len(pending))  # the first batch's forecast is the run's first


def sweep(base: str, project: str, runs: list[DevRun], live_runs: int,
          interval: float) -> Logged:
    """The project's finished references, then ``live_runs`` of the others logging at once."""
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {ADMIN_KEY}"},
                      timeout=60) as c:
        for run in runs[:REFERENCES]:
            post_finished(c, _create(c, project, run), run.steps, run.loss)
    loggers = runs[REFERENCES:REFERENCES + live_runs]
    start = time.perf_counter() + 1.0
    with ThreadPoolExecutor(len(loggers)) as pool:
        done = list(pool.map(lambda r: live(base, project, r, interval, start), loggers))
    return Logged([s for d in done for s in d.fresh], sum(d.uncovered for d in done))


def _line(what: str, got: Logged) -> str:
    s = np.array(got.fresh)
    if not s.size:
        return f"{what}: no batch was covered by a forecast within {DRAIN_S:.0f} s"
    return (f"{what}: batch -> forecast median {np.median(s):.2f} s, p95 "
            f"{np.quantile(s, 0.95):.2f} s, max {s.max():.2f} s over {len(s)} batches"
            + (f"; {got.uncovered} never covered within {DRAIN_S:.0f} s" if got.uncovered
               else ""))


def measure(base: str, mode: str, runs: list[DevRun], live_runs: int, interval: float) -> None:
    # Sweep first: the references' replays are memoised by their data, so whichever goes
    # second finds them made; the anchor gets that help, not the sweep.
    loaded = sweep(base, "load-sweep", runs, live_runs, interval)
    alone = sweep(base, "load-alone", runs, 1, interval)
    print(_line(f"{mode}, one run logging", alone))
    print(_line(f"{mode}, {live_runs} runs logging at once", loaded))
    if loaded.fresh and alone.fresh:
        print(f"{mode}: median ratio loaded / alone "
              f"{np.median(loaded.fresh) / np.median(alone.fresh):.1f}x, p95 ratio "
              f"{np.quantile(loaded.fresh, 0.95) / np.quantile(alone.fresh, 0.95):.1f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=8, help="runs logging at once")
    ap.add_argument("--interval", type=float, default=1.0, help="seconds between batches")
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 2],
                    help="Celery worker processes, one measurement each")
    args = ap.parse_args()
    runs = load_curves(SOURCES["tinylm_sched"], "train")
    if args.runs > len(runs) - REFERENCES:
        raise SystemExit(f"--runs: at most {len(runs) - REFERENCES} (tinylm_sched has "
                         f"{len(runs)} runs, {REFERENCES} of them the references)")
    print(f"{REFERENCES} finished runs of tinylm_sched as references; {args.runs} runs "
          f"logging {BATCHES} batches, one every {args.interval:g} s")
    sqlite = WORK / "load.db"
    sqlite.unlink(missing_ok=True)
    with curvecast_server(f"sqlite:///{sqlite}") as base:
        measure(base, "embedded (SQLite, one fitting child)", runs, args.runs, args.interval)
    for n in args.concurrency:
        # A fresh database and an empty queue each: nothing left over from the last worker.
        db, broker = fresh_database("curvecast_load"), "redis://127.0.0.1:6379/13"
        redis.Redis.from_url(broker).flushdb()
        with curvecast_server(db, broker) as base, celery_worker(db, broker, n, "load-worker"):
            measure(base, f"Postgres + Celery worker x{n}", runs, args.runs, args.interval)


if __name__ == "__main__":
    main()
