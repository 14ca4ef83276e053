"""Runs for the dashboard tests, logged through the public HTTP API like a training script.

Loss curves follow a seeded power law with an annealing drop that tracks the learning rate,
so the forecaster has something realistic to fit.
"""

import math
import random
import time
from collections.abc import Callable

import httpx

from tests.waiting import poll

TOTAL_STEPS = 2000
EVERY = 10  # log every EVERY steps


def cosine_lr(step: int, peak: float, warmup: int = 100, total: int = TOTAL_STEPS) -> float:
    if step < warmup:
        return peak * step / warmup
    return 0.5 * peak * (1 + math.cos(math.pi * (step - warmup) / (total - warmup)))


def wsd_lr(step: int, peak: float, warmup: int = 100, decay_start: int = 1600,
           total: int = TOTAL_STEPS) -> float:
    if step < warmup:
        return peak * step / warmup
    if step < decay_start:
        return peak
    return peak * (1 - (step - decay_start) / (total - decay_start))


def loss_at(step: int, lr: float, peak: float, floor: float, rng: random.Random) -> float:
    anneal = 0.25 * (1 - lr / peak) if step > 100 else 0.0
    return floor + 6.0 * (step + 60) ** -0.35 - anneal + rng.gauss(0, 0.01)


def log_points(http: httpx.Client, run: dict, start: int, stop: int, floor: float,
               seed: int, time_of: Callable[[int], float] | None = None) -> None:
    """Log loss and lr for steps in [start, stop), as the run's schedule says; `time_of`
    gives each row an explicit wall-clock time (unix seconds) instead of the server's."""
    sched = run["lr_schedule"]
    peak = sched["peak_lr"]
    lr_fn = wsd_lr if sched["type"] == "wsd" else cosine_lr
    rng = random.Random(seed * 100_003 + start)
    rows = []
    for step in range(start, stop, EVERY):
        lr = lr_fn(step, peak)
        row = {"step": step, "values": {"loss": loss_at(step, lr, peak, floor, rng), "lr": lr}}
        if time_of is not None:
            row["time"] = time_of(step)
        rows.append(row)
    response = http.post(f"/api/v1/runs/{run['id']}/metrics", json={"rows": rows})
    response.raise_for_status()


def create_run(http: httpx.Client, project: str, name: str, **fields) -> dict:
    response = http.post("/api/v1/runs", json={
        "project": project, "name": name, "total_steps": TOTAL_STEPS,
        "tokens_per_step": 524288, **fields,
    })
    response.raise_for_status()
    return response.json()


def seed_project(http: httpx.Client, project: str) -> dict[str, dict]:
    """Three finished runs and one running WSD run half way; returns runs by name."""
    cosine = {"type": "cosine", "peak_lr": 1e-3, "warmup_steps": 100, "final_lr": 0.0}
    finished = [
        ("baseline", 2.0, {"optimizer": "adamw", "lr": 1e-3, "model": {"width": 512}},
         ["baseline"]),
        ("wide", 1.9, {"optimizer": "adamw", "lr": 1e-3, "model": {"width": 1024}}, ["wide"]),
        ("slow", 2.3, {"optimizer": "sgd", "lr": 1e-3, "model": {"width": 512}}, ["sgd"]),
    ]
    runs = {}
    for i, (name, floor, config, tags) in enumerate(finished):
        run = create_run(http, project, name, group="sweep-a", tags=tags, config=config,
                         lr_schedule=cosine)
        log_points(http, run, 0, TOTAL_STEPS + 1, floor, seed=i)
        http.patch(f"/api/v1/runs/{run['id']}", json={"status": "finished"}).raise_for_status()
        runs[name] = run
    live = create_run(
        http, project, "live-wsd", group="sweep-b", tags=["wsd", "live"],
        config={"optimizer": "adamw", "lr": 1e-3, "model": {"width": 768}},
        lr_schedule={"type": "wsd", "peak_lr": 1e-3, "warmup_steps": 100,
                     "decay_start": 1600, "decay_shape": "linear", "final_lr": 0.0},
    )
    log_points(http, live, 0, 800, 2.05, seed=9)
    runs["live-wsd"] = live
    return runs


def wait_for_forecasts(http: httpx.Client, run_ids: list[str], timeout: float = 60) -> None:
    """Poll each run's loss forecast until it is final: neither pending, stale nor
    provisional."""
    deadline = time.monotonic() + timeout
    for run_id in run_ids:
        poll(lambda run_id=run_id: http.get(f"/api/v1/runs/{run_id}/forecast/loss").json(),
             lambda body: body["status"] != "pending" and not body.get("stale")
             and not body.get("provisional"),
             deadline - time.monotonic(),
             f"forecast of {run_id} still pending, stale or provisional")


# A scaling ladder: final losses on the law L = E + A/N^alpha + B/D^beta, with 0.4% noise.
LAW = {"E": 1.7, "A": 400.0, "alpha": 0.34, "B": 410.0, "beta": 0.28}
LADDER_PARAMS = (1e7, 3e7, 1e8)
LADDER_TOKENS = (2e8, 6e8, 2e9)


def law_loss(params: float, tokens: float) -> float:
    return LAW["E"] + LAW["A"] / params ** LAW["alpha"] + LAW["B"] / tokens ** LAW["beta"]


def seed_ladder(http: httpx.Client, project: str) -> list[dict]:
    """3 sizes x 3 token counts of finished runs in group "ladder", each with its final
    val_loss at its last step; the smallest size is also tagged "small"."""
    rng = random.Random(7)
    runs = []
    for n in LADDER_PARAMS:
        for d in LADDER_TOKENS:
            run = create_run(http, project, f"n{n:.0e}-d{d:.0e}", group="ladder",
                             tags=["small"] if n == LADDER_PARAMS[0] else [],
                             params=n, tokens=d, tokens_per_step=None)
            loss = law_loss(n, d) * (1 + rng.gauss(0, 0.004))
            http.post(f"/api/v1/runs/{run['id']}/metrics", json={"rows": [
                {"step": TOTAL_STEPS, "values": {"val_loss": loss}}]}).raise_for_status()
            http.patch(f"/api/v1/runs/{run['id']}",
                       json={"status": "finished"}).raise_for_status()
            runs.append(run)
    return runs
