"""Held-out accuracy of the scaling fits, end to end through the HTTP API of a fresh server.

Same protocol as bench.scaling_offline, but every number goes through the product: one run per
data row (params, tokens, config with flops / unique_tokens / epochs) that logs its final loss
at its last step and finishes; fits requested over the runs tagged as the fit set (at most 1/10
of the largest run's compute); every larger run predicted through /predict. Reports median
absolute relative error and 90% interval coverage, next to a plain log-log line (law
"loglinear") fitted to the same runs.

    .venv/bin/python -m bench.scaling_accuracy
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx
import numpy as np

from bench.scaling_data import (
    gadre_datasets,
    gadre_points,
    muennighoff_points,
    split_by_compute,
)
from bench.servers import ADMIN_KEY, curvecast_server, fresh_database
from workers.forecast.scaling import ScalingPoint

PROJECT = "scaling-bench"
METRIC = "c4_val"  # both data sets report C4 validation loss; not a forecast key: no jobs
LAST_STEP = 1000
FIT_TIMEOUT_S = 900.0


@dataclass(frozen=True)
class Case:
    """A held-out protocol over one group of runs: fit on the tagged ones, predict the rest."""

    name: str
    group: str
    tag: str
    fit_set: list[ScalingPoint]
    held_out: list[ScalingPoint]
    laws: tuple[str, ...]


@dataclass(frozen=True)
class Score:
    case: str
    law: str
    status: str
    n_fit: int
    errors: list[float]
    covered: list[bool]
    seconds: float


def cases() -> list[Case]:
    out = []
    for ds in gadre_datasets():
        fit, test = split_by_compute(gadre_points(ds))
        out.append(Case(f"gadre {ds} c4_val", f"gadre-{ds}", "fit", fit, test,
                        ("overtraining", "loglinear")))
    fit, test = split_by_compute(muennighoff_points(single_epoch=True))
    out.append(Case("muennighoff epochs==1", "muennighoff", "fit-single-epoch", fit, test,
                    ("chinchilla", "loglinear")))
    fit, test = split_by_compute(muennighoff_points())
    out.append(Case("muennighoff all rows", "muennighoff", "fit-all", fit, test,
                    ("data_constrained", "loglinear")))
    return out


def _config(p: ScalingPoint) -> dict[str, float]:
    fields = {"flops": p.flops, "unique_tokens": p.unique_tokens, "epochs": p.epochs}
    return {k: v for k, v in fields.items() if v is not None}


def upload(http: httpx.Client, all_cases: list[Case]) -> int:
    """One finished run per data row, tagged with every case whose fit set holds it."""
    rows: dict[str, dict[ScalingPoint, set[str]]] = {}
    for case in all_cases:
        group = rows.setdefault(case.group, {})
        for p in case.fit_set:
            group.setdefault(p, set()).add(case.tag)
        for p in case.held_out:
            group.setdefault(p, set())
    n = 0
    for group, points in rows.items():
        for p, tags in points.items():
            run = http.post("/api/v1/runs", json={
                "project": PROJECT, "name": p.run_id, "group": group, "tags": sorted(tags),
                "params": p.params, "tokens": p.tokens, "config": _config(p),
            }).raise_for_status().json()
            http.post(f"/api/v1/runs/{run['id']}/metrics", json={
                "rows": [{"step": LAST_STEP, "values": {METRIC: p.loss}}],
            }).raise_for_status()
            http.patch(f"/api/v1/runs/{run['id']}", json={"status": "finished"}).raise_for_status()
            n += 1
    return n


def fit(http: httpx.Client, case: Case, law: str) -> tuple[dict, float]:
    """Request a fit and wait for it; returns the fit and seconds from request to result."""
    start = time.perf_counter()
    created = http.post(f"/api/v1/projects/{PROJECT}/scaling-fits", json={
        "metric": METRIC, "law": law, "runs": {"group": case.group, "tags": [case.tag]},
    }).raise_for_status().json()
    while time.perf_counter() - start < FIT_TIMEOUT_S:
        body = http.get(f"/api/v1/scaling-fits/{created['id']}").raise_for_status().json()
        if body["status"] != "pending":
            return body, time.perf_counter() - start
        time.sleep(0.2)
    raise RuntimeError(f"{case.name} / {law}: fit still pending after {FIT_TIMEOUT_S} s")


def score(http: httpx.Client, case: Case, law: str) -> Score:
    body, seconds = fit(http, case, law)
    errors, covered = [], []
    if body["status"] == "ready":
        for p in case.held_out:
            pred = http.post(f"/api/v1/scaling-fits/{body['id']}/predict", json={
                "params": p.params, "tokens": p.tokens, "unique_tokens": p.unique_tokens,
                "flops": p.flops,
            }).raise_for_status().json()
            errors.append(abs(pred["mean"] - p.loss) / p.loss)
            covered.append(pred["lower"] <= p.loss <= pred["upper"])
    return Score(case.name, law, body["status"], body["n_runs"], errors, covered, seconds)


def row(name: str, n_fit: str, s: Score | None, errors: list[float], covered: list[bool]) -> str:
    if not errors:
        return f"| {name} | {n_fit} | 0 | {s.status if s else ''} | | |"
    seconds = f"{s.seconds:.1f}" if s else ""
    return (f"| {name} | {n_fit} | {len(errors)} | {100 * np.median(errors):.2f} % | "
            f"{100 * np.mean(covered):.0f} % | {seconds} |")


def main() -> None:
    all_cases = cases()
    db = fresh_database("curvecast_bench_scaling")
    with curvecast_server(db) as base, httpx.Client(
        base_url=base, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=60
    ) as http:
        start = time.perf_counter()
        n_runs = upload(http, all_cases)
        print(f"{n_runs} runs uploaded in {time.perf_counter() - start:.1f} s\n")
        print("| case / law | fit runs | held-out runs | median abs rel error | "
              "90% coverage | request to result, s |")
        print("|---|---|---|---|---|---|")
        pooled: dict[str, tuple[list[float], list[bool]]] = {}
        for case in all_cases:
            for law in case.laws:
                s = score(http, case, law)
                print(row(f"{case.name} / {law}", str(s.n_fit), s, s.errors, s.covered),
                      flush=True)
                if case.name.startswith("gadre"):
                    errors, covered = pooled.setdefault(law, ([], []))
                    errors += s.errors
                    covered += s.covered
        for law, (errors, covered) in pooled.items():
            print(row(f"gadre pooled c4_val / {law}", "", None, errors, covered))


if __name__ == "__main__":
    main()
