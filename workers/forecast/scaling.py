"""Cross-run scaling laws: fit L(N, D) and friends to finished runs, predict with honest intervals.

Laws (all fitted on log-loss with a Huber loss, see `scaling_fit`):
- "chinchilla":       L = E + A/N^alpha + B/D^beta                       (Hoffmann et al. 2022)
- "compute":          L = E + A/C^alpha                                  (C = FLOPs, else 6ND)
- "data_constrained": chinchilla on effective N', D' for repeated data   (Muennighoff et al. 2023)
- "overtraining":     L = E + (a M^eta + b M^-eta) C^-eta, M = D/N        (Gadre et al. 2024)
- "loglinear":        log L = c - k log C, the plain baseline
Intervals combine bootstrap, run-to-run noise and a leave-future-out extrapolation term
(`scaling_error`). Forecast points (loss_sd set) count with their extra uncertainty.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy.stats import norm

from workers.forecast.scaling_error import (
    extrapolation_distance,
    extrapolation_kappa,
    future_errors,
    noise_scale,
    repetition_factor,
    repetition_noise,
    robust_var,
)
from workers.forecast.scaling_fit import HUBER_DELTA, Fitter, bootstrap, fitter_for, subset
from workers.forecast.scaling_laws import (
    LAWS,
    LINEAR_LAWS,
    Inputs,
    chinchilla_optimal_n,
    make_inputs,
)


@dataclass(frozen=True)
class ScalingPoint:
    """One run's final loss at (N params, D tokens)."""

    params: float
    tokens: float
    loss: float
    flops: float | None = None
    unique_tokens: float | None = None
    epochs: float | None = None
    loss_sd: float | None = None  # set for points that come from an unfinished run's forecast
    run_id: str = ""


@dataclass
class ScalingFit:
    """A fitted law; `theta`/`draws` are raw log-space parameters and their bootstrap draws."""

    status: str  # "ready" | "insufficient_data" | "degenerate"
    reason: str
    law: str
    params: dict[str, float]
    intervals: dict[str, tuple[float, float]]
    level: float
    n_points: int
    n_forecast_points: int = 0
    theta: list[float] = field(default_factory=list)
    draws: list[list[float]] = field(default_factory=list)
    sigma_noise: float = 0.0
    kappa: float = 0.0
    log_c_max: float = 0.0
    repetition_slope: float = 0.0  # noise and extrapolation terms grow as epochs^slope

    def predict(
        self,
        params: float,
        tokens: float,
        *,
        unique_tokens: float | None = None,
        flops: float | None = None,
    ) -> tuple[float, float, float]:
        """Loss (median) and its `level` prediction interval for a new finished run."""
        x = make_inputs(
            np.array([params]),
            np.array([tokens]),
            np.array([np.nan if flops is None else flops]),
            np.array([np.nan if unique_tokens is None else unique_tokens]),
        )
        mean, lo, hi = self._predict_log(x)
        return float(np.exp(mean[0])), float(np.exp(lo[0])), float(np.exp(hi[0]))

    def _predict_log(self, x: Inputs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self.status != "ready":
            raise ValueError(f"scaling fit is {self.status}: {self.reason}")
        fitter = fitter_for(self.law)
        mean = fitter.predict(np.asarray(self.theta), x)
        var = repetition_factor(self.repetition_slope, x) ** 2 * (
            self.sigma_noise**2
            + (self.kappa * extrapolation_distance(x.log_c, self.log_c_max)) ** 2
        )
        if self.draws:
            var = var + robust_var(np.array([fitter.predict(np.asarray(t), x) for t in self.draws]))
        z = float(norm.ppf(0.5 + self.level / 2.0))
        sd = np.sqrt(var)
        return mean, mean - z * sd, mean + z * sd

    def to_dict(self) -> dict:
        d = asdict(self)
        d["intervals"] = {k: list(v) for k, v in self.intervals.items()}
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ScalingFit:
        d = dict(d)
        d["intervals"] = {k: (float(v[0]), float(v[1])) for k, v in d["intervals"].items()}
        return cls(**d)


def _not_ready(status: str, reason: str, law: str, level: float, n: int) -> ScalingFit:
    return ScalingFit(status, reason, law, {}, {}, level, n)


def natural_params(law: str, theta: np.ndarray) -> dict[str, float]:
    """Human-facing parameters of a raw parameter vector."""
    if law == "data_constrained":
        nat = LINEAR_LAWS["chinchilla"].natural(theta[:5])
        return nat | {"R_N_star": float(np.exp(theta[5])), "R_D_star": float(np.exp(theta[6]))}
    return LINEAR_LAWS[law].natural(theta)


def _clean(points: Sequence[ScalingPoint]) -> tuple[list[ScalingPoint], int]:
    def ok(p: ScalingPoint) -> bool:
        vals = [p.params, p.tokens, p.loss] + [
            v for v in (p.flops, p.unique_tokens) if v is not None
        ]
        return all(np.isfinite(v) and v > 0 for v in vals)

    kept = [p for p in points if ok(p)]
    return kept, len(points) - len(kept)


def _inputs(points: Sequence[ScalingPoint]) -> Inputs:
    def col(name: str) -> np.ndarray:
        return np.array([np.nan if getattr(p, name) is None else getattr(p, name) for p in points])

    unique = col("unique_tokens")
    epochs = col("epochs")
    tokens = col("tokens")
    unique = np.where(np.isfinite(unique), unique, tokens / np.where(epochs > 0, epochs, np.nan))
    return make_inputs(col("params"), tokens, col("flops"), unique)


def _scales(fitter: Fitter, x: Inputs, y: np.ndarray, rel_sd: np.ndarray) -> np.ndarray:
    """Residual scale per point: 1 for finished runs, wider for forecasts by their sd."""
    if not np.any(rel_sd > 0):
        return np.ones_like(y)
    done = rel_sd == 0
    ref = x if not done.any() else subset(x, np.flatnonzero(done))
    y_ref = y if not done.any() else y[done]
    theta = fitter.fit(ref, y_ref, np.ones_like(y_ref))
    sigma = max(noise_scale(y_ref - fitter.predict(theta, ref), fitter.n_params), HUBER_DELTA)
    return np.sqrt(1.0 + (rel_sd / sigma) ** 2)


def fit_scaling(
    points: Sequence[ScalingPoint],
    law: str = "chinchilla",
    *,
    level: float = 0.9,
    n_boot: int = 200,
    seed: int = 0,
) -> ScalingFit:
    """Fit `law` to runs' final losses; degenerate inputs get a status, never a made-up fit.

    `n_boot` case-resampling refits give the parameter intervals and the parameter part of
    prediction intervals (n_boot=0: point fit, noise and extrapolation terms only).
    """
    if law not in LAWS:
        raise ValueError(f"unknown law {law!r}; expected one of {', '.join(LAWS)}")
    kept, dropped = _clean(points)
    note = f" ({dropped} runs ignored: non-finite or non-positive values)" if dropped else ""
    fitter = fitter_for(law)
    if len(kept) < fitter.n_params + 1:
        why = f"{len(kept)} usable runs for {fitter.n_params} parameters; need at least "
        return _not_ready(
            "insufficient_data", why + f"{fitter.n_params + 1}{note}", law, level, len(kept)
        )
    x = _inputs(kept)
    why = fitter.missing(x)
    if why:
        return _not_ready("degenerate", why + note, law, level, len(kept))

    y = np.log([p.loss for p in kept])
    rel_sd = np.array([(p.loss_sd or 0.0) / p.loss for p in kept])
    scale = _scales(fitter, x, y, rel_sd)
    theta = fitter.fit(x, y, scale)
    if not np.all(np.isfinite(theta)):
        return _not_ready(
            "degenerate", "the optimiser found no finite fit" + note, law, level, len(kept)
        )
    done = rel_sd == 0
    resid = y - fitter.predict(theta, x)
    log_epochs = x.log_d - x.log_u
    # Noise of a new finished run: from finished runs when there are enough of them.
    if done.sum() >= 3:
        resid, noise_epochs = resid[done], log_epochs[done]
    else:
        resid, noise_epochs = resid / scale, log_epochs
    sigma, slope = repetition_noise(resid, noise_epochs, fitter.n_params)
    rng = np.random.default_rng(seed)
    errs, dists, boot_vars, ahead = future_errors(fitter, x, y, scale, 2 * fitter.n_params, rng)
    h = repetition_factor(slope, subset(x, ahead))
    kappa = extrapolation_kappa(errs / h, dists, boot_vars / h**2, sigma)
    draws = bootstrap(fitter, x, y, scale, theta, n_boot, rng)

    nat = natural_params(law, theta)
    tail = (1.0 - level) / 2.0 * 100.0
    intervals: dict[str, tuple[float, float]] = {}
    if len(draws):
        boot_nat = [natural_params(law, t) for t in draws]
        for k in nat:
            vals = np.array([b[k] for b in boot_nat])
            lo, hi = np.percentile(vals, [tail, 100.0 - tail])
            intervals[k] = (float(lo), float(hi))
    return ScalingFit(
        status="ready",
        reason=f"fitted on {len(kept)} runs ({int((~done).sum())} from forecasts){note}",
        law=law,
        params={k: float(v) for k, v in nat.items()},
        intervals=intervals,
        level=level,
        n_points=len(kept),
        n_forecast_points=int((~done).sum()),
        theta=[float(t) for t in theta],
        draws=[[float(v) for v in t] for t in draws],
        sigma_noise=float(sigma),
        kappa=float(kappa),
        repetition_slope=slope,
        log_c_max=float(x.log_c.max()),
    )


def _allocation(law: str, theta: np.ndarray, compute: float) -> tuple[float, float] | None:
    """Compute-optimal (N*, D*) at C = 6ND, or None for laws without an N/D split."""
    if law in ("chinchilla", "data_constrained"):
        n_opt = float(chinchilla_optimal_n(natural_params("chinchilla", theta[:5]), compute))
        return n_opt, compute / (6.0 * n_opt)
    if law == "overtraining":
        nat = natural_params(law, theta)
        m_opt = (nat["b"] / nat["a"]) ** (1.0 / (2.0 * nat["eta"]))
        n_opt = float(np.sqrt(compute / (6.0 * m_opt)))
        return n_opt, m_opt * n_opt
    return None


def compute_optimal(fit: ScalingFit, compute: float) -> dict:
    """Loss-minimising N, D at C = 6ND (unlimited unique data), with intervals over draws.

    `status` is "ready", or "no_allocation" for laws of compute alone: they still give L(C),
    but N and D are null and `reason` says which laws would split them.
    """
    alloc = _allocation(fit.law, np.asarray(fit.theta), compute) if fit.theta else None
    if fit.status == "ready" and alloc is None:
        mean, lo, hi = fit.predict(1.0, 1.0, flops=compute)  # N, D unused: C is given
        return {
            "params": None,
            "tokens": None,
            "loss": mean,
            "lower": lo,
            "upper": hi,
            "compute": compute,
            "status": "no_allocation",
            "reason": f"law {fit.law!r} models loss from compute alone, so it has no N/D split; "
            "fit 'chinchilla', 'overtraining' or 'data_constrained' for the optimal N and D",
        }
    if alloc is None:
        raise ValueError(f"scaling fit is {fit.status}: {fit.reason}")
    n_opt, d_opt = alloc
    mean, lo, hi = fit.predict(n_opt, d_opt)
    out = {
        "params": n_opt,
        "tokens": d_opt,
        "loss": mean,
        "lower": lo,
        "upper": hi,
        "compute": compute,
        "status": "ready",
        "reason": "",
    }
    if fit.draws:
        tail = (1.0 - fit.level) / 2.0 * 100.0
        ns = np.array([_allocation(fit.law, np.asarray(t), compute)[0] for t in fit.draws])
        n_lo, n_hi = np.percentile(ns[np.isfinite(ns)], [tail, 100.0 - tail])
        out["params_interval"] = (float(n_lo), float(n_hi))
        out["tokens_interval"] = (compute / (6.0 * n_hi), compute / (6.0 * n_lo))
    return out


def frontier(fit: ScalingFit, computes: Sequence[float]) -> list[dict]:
    """The compute-optimal frontier N*(C), D*(C), L*(C) at each budget."""
    return [compute_optimal(fit, float(c)) for c in computes]
