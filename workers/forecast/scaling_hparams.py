"""Hyperparameter scaling laws: each sweep's optimum, then eta* = a N^b D^c and B* = d D^e.

As in "Predictable Scale" (Li et al. 2025): find each (N, D) sweep's best learning rate or batch
size by fitting a curve through the sweep (a quadratic in log(hp) around the best point, so the
optimum can fall between grid values), then fit a power law in N and D by least squares in log
space. A power law in logs is linear, so its parameter and prediction intervals are the exact
Student-t ones rather than a bootstrap of a handful of sweeps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy.stats import t as student_t

WINDOW = 2  # sweep points used on each side of the best one


def sweep_optimum(hp_values: Sequence[float], losses: Sequence[float]) -> dict:
    """Best hyperparameter of one sweep from a quadratic in log(hp) near the best point.

    Returns {"optimum", "loss", "status", "reason", "n_points"}; status is "ready", "edge"
    (best value at the end of the sweep: the optimum is only bounded, argmin returned),
    "flat" (no curvature: argmin returned) or "insufficient_data".
    """
    hp = np.asarray(hp_values, float)
    loss = np.asarray(losses, float)
    ok = np.isfinite(hp) & (hp > 0) & np.isfinite(loss)  # diverged runs (NaN/inf) drop out
    hp, loss = hp[ok], loss[ok]
    order = np.argsort(hp)
    hp, loss = hp[order], loss[order]
    x = np.log(hp)
    if len(np.unique(x)) < 3:
        return {
            "optimum": float(hp[np.argmin(loss)]) if len(hp) else float("nan"),
            "loss": float(loss.min()) if len(loss) else float("nan"),
            "status": "insufficient_data",
            "n_points": int(len(hp)),
            "reason": f"{len(np.unique(x))} distinct finite values; a curve needs 3",
        }
    best = int(np.argmin(loss))
    argmin = {"optimum": float(hp[best]), "loss": float(loss[best]), "n_points": int(len(hp))}
    if best in (0, len(hp) - 1):
        side = "smallest" if best == 0 else "largest"
        return argmin | {
            "status": "edge",
            "reason": f"best loss at the {side} value swept; extend the sweep",
        }
    lo, hi = max(0, best - WINDOW), min(len(hp), best + WINDOW + 1)
    c2, c1, c0 = np.polyfit(x[lo:hi], loss[lo:hi], 2)
    if c2 <= 0:
        return argmin | {"status": "flat", "reason": "no curvature around the best value"}
    x_opt = float(np.clip(-c1 / (2 * c2), x[lo], x[hi - 1]))
    return {
        "optimum": float(np.exp(x_opt)),
        "loss": float(c0 + c1 * x_opt + c2 * x_opt**2),
        "status": "ready",
        "reason": f"quadratic in log(hp) through {hi - lo} points",
        "n_points": int(len(hp)),
    }


@dataclass
class HparamLaw:
    """log value = log a + b log N + c log D (terms listed in `uses`), fitted by OLS."""

    status: str  # "ready" | "insufficient_data" | "degenerate"
    reason: str
    uses: tuple[str, ...]
    params: dict[str, float]
    intervals: dict[str, tuple[float, float]]
    level: float
    n_points: int
    coef: list[float] = field(default_factory=list)
    cov_unscaled: list[list[float]] = field(default_factory=list)  # (X^T X)^-1
    sigma: float = 0.0
    dof: int = 0

    def predict(self, params: float, tokens: float) -> tuple[float, float, float]:
        """Optimal value for a planned run and its `level` prediction interval."""
        if self.status != "ready":
            raise ValueError(f"hyperparameter law is {self.status}: {self.reason}")
        row = _design(np.array([params]), np.array([tokens]), self.uses)[0]
        mean = float(row @ np.asarray(self.coef))
        spread = self.sigma * np.sqrt(1.0 + row @ np.asarray(self.cov_unscaled) @ row)
        q = float(student_t.ppf(0.5 + self.level / 2.0, self.dof))
        return (
            float(np.exp(mean)),
            float(np.exp(mean - q * spread)),
            float(np.exp(mean + q * spread)),
        )

    def to_dict(self) -> dict:
        d = asdict(self)
        d["uses"] = list(self.uses)
        d["intervals"] = {k: list(v) for k, v in self.intervals.items()}
        return d

    @classmethod
    def from_dict(cls, d: dict) -> HparamLaw:
        d = dict(d)
        d["uses"] = tuple(d["uses"])
        d["intervals"] = {k: (float(v[0]), float(v[1])) for k, v in d["intervals"].items()}
        return cls(**d)


def _design(n: np.ndarray, d: np.ndarray, uses: tuple[str, ...]) -> np.ndarray:
    cols = [np.ones_like(n)]
    cols += [np.log(n)] if "params" in uses else []
    cols += [np.log(d)] if "tokens" in uses else []
    return np.stack(cols, axis=-1)


def fit_hparam_law(
    points: Sequence[tuple[float, float, float]],
    *,
    level: float = 0.9,
    seed: int = 0,
    uses: Sequence[str] = ("params", "tokens"),
) -> HparamLaw:
    """Fit value* = a N^b D^c to (N, D, optimal value) triples.

    `uses=("tokens",)` gives Predictable Scale's batch-size law B* = d D^e. `seed` is accepted
    for symmetry with `fit_scaling`; the OLS intervals here are analytic and need no draws.
    """
    del seed
    uses = tuple(u for u in ("params", "tokens") if u in uses)
    arr = np.array([p for p in points if np.all(np.isfinite(p)) and min(p) > 0], float)
    arr = arr.reshape(-1, 3)
    names = ["a"] + [{"params": "b_params", "tokens": "c_tokens"}[u] for u in uses]
    n_coef = len(names)

    def not_ready(status: str, reason: str) -> HparamLaw:
        return HparamLaw(status, reason, uses, {}, {}, level, len(arr))

    if len(arr) < n_coef + 1:
        return not_ready(
            "insufficient_data",
            f"{len(arr)} usable sweeps for {n_coef} coefficients; need {n_coef + 1}",
        )
    for col, use in ((0, "params"), (1, "tokens")):
        if use in uses and len(np.unique(np.round(np.log(arr[:, col]), 6))) < 2:
            return not_ready(
                "degenerate",
                f"all sweeps share one {use} value; "
                f"drop {use!r} from `uses` or sweep at another size",
            )
    x = _design(arr[:, 0], arr[:, 1], uses)
    y = np.log(arr[:, 2])
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    dof = len(y) - n_coef
    sigma = float(np.sqrt(np.sum((y - x @ coef) ** 2) / dof))
    cov = np.linalg.pinv(x.T @ x)
    q = float(student_t.ppf(0.5 + level / 2.0, dof))
    half = q * sigma * np.sqrt(np.diag(cov))
    params = {k: float(v) for k, v in zip(names, coef, strict=True)}
    params["a"] = float(np.exp(coef[0]))
    intervals = {k: (float(c - h), float(c + h)) for k, c, h in zip(names, coef, half, strict=True)}
    intervals["a"] = (float(np.exp(coef[0] - half[0])), float(np.exp(coef[0] + half[0])))
    return HparamLaw(
        "ready",
        f"fitted on {len(arr)} sweeps",
        uses,
        params,
        intervals,
        level,
        len(arr),
        [float(c) for c in coef],
        cov.tolist(),
        sigma,
        dof,
    )
