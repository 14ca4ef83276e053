"""Dev scaling data (/work/shared/data/scaling) as ScalingPoints, and the held-out protocol.

Protocol: within one dataset, fit on runs with at most 1/10 of the largest run's compute and
predict every larger run; score median absolute relative error and interval coverage.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from workers.forecast.scaling import ScalingPoint, fit_scaling

DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "scaling"
FIT_FRACTION = 0.1


def _rows(name: str) -> list[dict[str, str]]:
    with open(DATA_DIR / name, newline="") as f:
        return list(csv.DictReader(f))


def gadre_points(train_dataset: str, eval_split: str = "c4_val") -> list[ScalingPoint]:
    """Gadre et al. 2024 over-training grid for one training dataset and eval set."""
    return [
        ScalingPoint(
            params=float(r["params"]),
            tokens=float(r["tokens"]),
            loss=float(r["final_loss"]),
            flops=float(r["flops"]),
            run_id=r["run_id"],
        )
        for r in _rows("gadre2024_overtraining.csv")
        if r["train_dataset"] == train_dataset and r["eval_split"] == eval_split
    ]


def gadre_datasets() -> list[str]:
    return sorted({r["train_dataset"] for r in _rows("gadre2024_overtraining.csv")})


def muennighoff_points(
    single_epoch: bool = False, include_dedup: bool = True
) -> list[ScalingPoint]:
    """Muennighoff et al. 2023 datablations runs (C4; optionally the deduplicated-C4 ones)."""
    return [
        ScalingPoint(
            params=float(r["params"]),
            tokens=float(r["tokens"]),
            loss=float(r["final_loss"]),
            flops=float(r["flops"]),
            unique_tokens=float(r["unique_tokens"]),
            epochs=float(r["epochs"]),
            run_id=r["run_id"],
        )
        for r in _rows("muennighoff2023_datablations.csv")
        if (not single_epoch or float(r["epochs"]) == 1.0)
        and (include_dedup or r["deduplicated_data"] == "False")
    ]


def _compute(p: ScalingPoint) -> float:
    return p.flops if p.flops is not None else 6.0 * p.params * p.tokens


def split_by_compute(
    points: Sequence[ScalingPoint], fraction: float = FIT_FRACTION
) -> tuple[list[ScalingPoint], list[ScalingPoint]]:
    """Runs with compute <= fraction * max (fit set) and the rest (held out)."""
    cut = fraction * max(_compute(p) for p in points)
    return [p for p in points if _compute(p) <= cut], [p for p in points if _compute(p) > cut]


@dataclass(frozen=True)
class HeldOutScore:
    law: str
    n_fit: int
    n_test: int
    median_abs_rel_error: float
    coverage: float
    status: str
    seconds: float


def score_held_out(
    points: Sequence[ScalingPoint],
    law: str,
    *,
    level: float = 0.9,
    n_boot: int = 200,
    clock: Callable[[], float],
) -> tuple[HeldOutScore, list[tuple[ScalingPoint, tuple[float, float, float]]]]:
    """Fit on the small-compute runs, predict the large ones; per-run predictions too."""
    train, test = split_by_compute(points)
    start = clock()
    fit = fit_scaling(train, law, level=level, n_boot=n_boot)
    elapsed = clock() - start
    if fit.status != "ready":
        return HeldOutScore(law, len(train), len(test), np.nan, np.nan, fit.status, elapsed), []
    preds = [
        (p, fit.predict(p.params, p.tokens, unique_tokens=p.unique_tokens, flops=p.flops))
        for p in test
    ]
    err = np.array([abs(m - p.loss) / p.loss for p, (m, _, _) in preds])
    cover = np.array([lo <= p.loss <= hi for p, (_, lo, hi) in preds])
    score = HeldOutScore(
        law, len(train), len(test), float(np.median(err)), float(cover.mean()), "ready", elapsed
    )
    return score, preds
