"""Offline accuracy of the cross-run scaling fits on published scaling data.

Protocol (per dataset): fit on runs with at most 1/10 of the largest run's compute, predict
every larger run; report median absolute relative error and 90% interval coverage, next to a
plain log-log line (log L vs log C) fitted to the same runs.

    .venv/bin/python -m bench.scaling_offline [--all-evals]

`--all-evals` adds Gadre et al.'s other seven eval sets as an out-of-sample check of the
interval calibration (the target itself is c4_val).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

import numpy as np

from bench.scaling_data import (
    gadre_datasets,
    gadre_points,
    muennighoff_points,
    score_held_out,
)
from workers.forecast.scaling import ScalingPoint

Case = tuple[str, list[ScalingPoint], tuple[str, ...]]


def cases(all_evals: bool) -> list[Case]:
    out: list[Case] = [
        (f"gadre {ds} c4_val", gadre_points(ds), ("overtraining", "chinchilla", "loglinear"))
        for ds in gadre_datasets()
    ]
    if all_evals:
        evals = (
            "paloma_c4_en",
            "paloma_falcon-refinedweb",
            "paloma_redpajama",
            "paloma_ptb",
            "paloma_dolma_100_programing_languages",
            "openlm",
            "de-en",
        )
        out += [
            (f"gadre {ds} {ev}", gadre_points(ds, ev), ("overtraining", "loglinear"))
            for ds in gadre_datasets()
            for ev in evals
        ]
    out.append(
        (
            "muennighoff epochs==1",
            muennighoff_points(single_epoch=True),
            ("chinchilla", "overtraining", "loglinear"),
        )
    )
    out.append(
        (
            "muennighoff all rows",
            muennighoff_points(),
            ("data_constrained", "chinchilla", "loglinear"),
        )
    )
    return out


def pooled(name: str, errors: Sequence[float], covered: Sequence[bool]) -> str:
    return (
        f"| {name} | | {len(errors)} | {100 * np.median(errors):.2f} % | "
        f"{100 * np.mean(covered):.0f} % | |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--all-evals", action="store_true")
    args = parser.parse_args()
    print(
        "| dataset / law | fit runs | held-out runs | median abs rel error | 90% coverage | fit s |"
    )
    print("|---|---|---|---|---|---|")
    pool: dict[str, tuple[list[float], list[bool]]] = {}
    for name, points, laws in cases(args.all_evals):
        for law in laws:
            score, preds = score_held_out(points, law, clock=time.perf_counter)
            if score.status != "ready":
                print(f"| {name} / {law} | {score.n_fit} | {score.n_test} | {score.status} | | |")
                continue
            print(
                f"| {name} / {law} | {score.n_fit} | {score.n_test} | "
                f"{100 * score.median_abs_rel_error:.2f} % | {100 * score.coverage:.0f} % | "
                f"{score.seconds:.1f} |"
            )
            if name.startswith("gadre"):
                errs, cov = pool.setdefault(law, ([], []))
                errs += [abs(m - p.loss) / p.loss for p, (m, _, _) in preds]
                cov += [lo <= p.loss <= hi for p, (_, lo, hi) in preds]
    for law, (errs, cov) in pool.items():
        print(
            pooled(
                f"gadre pooled ({'all evals' if args.all_evals else 'c4_val'}) / {law}", errs, cov
            )
        )


if __name__ == "__main__":
    main()
