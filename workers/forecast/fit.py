"""Robust multi-start fitting of the laws, a cheap residual-block bootstrap, model weights.

Fitting is variable projection: a derivative-free search from the best points of a starting
grid (see _polish) moves only the shape parameters theta; for each theta the level
coefficients come from a Huber-weighted, non-negative least-squares solve on relative
residuals (y - f) / y, which equal log residuals to first order. Gaussian priors on linear
combinations of the coefficients enter as extra rows, which is how unidentified parameters
(an annealing drop not seen yet) and cross-run knowledge are carried.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy.optimize import minimize, minimize_scalar, nnls

from workers.forecast.guesses import Start
from workers.forecast.laws import Design, Law

HUBER_DELTA = 1e-3
RESTARTS = 3  # a simplex is restarted where it stopped, at most this many times in all
# A simplex has converged when its vertices agree within SIMPLEX_OBJECTIVE_TOLERANCE in the
# objective (a chi-square: 0.01 is a hundredth of what one standard error is worth) and within
# SIMPLEX_SHAPE_TOLERANCE in every shape parameter (exponents and logs). The shape tolerance is
# what costs: the former (1e-3, 1e-4) spent 1.45x these evaluations on the joint fits of 14
# reference sets (a new set is most of a slow forecast) for a summed objective 0.18 % lower;
# 1e-2 spent 1.4x fewer than these, but moved a synthetic warm forecast by 0.5 %, the
# multi-power law's extrapolation varying along its flat valleys (bench/RESULTS.md, session 19).
SIMPLEX_OBJECTIVE_TOLERANCE = 1e-2
SIMPLEX_SHAPE_TOLERANCE = 3e-3
RESTART_GAIN = SIMPLEX_OBJECTIVE_TOLERANCE  # restarted while a run gains more than this
IRLS_ITERATIONS = 3


@dataclass(frozen=True)
class Prior:
    """rows @ coef ~ Normal(mean, sd), one row per constraint; Student-t with ``dof`` degrees
    of freedom when given, so that a guess yields to data that clearly disagree with it
    (``dof`` may be one value per row, np.inf for a Gaussian row)."""

    rows: np.ndarray
    mean: np.ndarray
    sd: np.ndarray
    dof: float | np.ndarray | None = None

    @cached_property
    def _tails(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(which rows are Student-t, their dof with 1 elsewhere); None when all are Gaussian.
        Computed once: cost() runs in every step of every fit."""
        if self.dof is None:
            return None
        dof = np.broadcast_to(np.asarray(self.dof, dtype=float), self.mean.shape)
        t = np.isfinite(dof)  # per-row dof: np.inf marks a Gaussian row
        return t, np.where(t, dof, 1.0)

    def cost(self, coef: np.ndarray) -> tuple[float, np.ndarray]:
        """(negative log density up to a constant, IRLS weights of the rows)."""
        z2 = ((self.rows @ coef - self.mean) / self.sd) ** 2
        if self._tails is None:
            return float(np.sum(z2)), np.ones_like(z2)
        t, d = self._tails
        return (float(np.sum(np.where(t, (d + 1) * np.log1p(z2 / d), z2))),
                np.where(t, (d + 1) / (d + z2), 1.0))

    def effective(self, coef: np.ndarray) -> Prior:
        """The prior as it acts at ``coef`` (Gaussian weight), keeping its tails for draws."""
        return Prior(self.rows, self.mean, self.sd / np.sqrt(self.cost(coef)[1]), self.dof)

    def draw_means(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Prior means redrawn per bootstrap replicate (t tails capped at 3 sd)."""
        z = rng.standard_normal((n, len(self.mean)))
        if self.dof is not None and np.ndim(self.dof) == 0:
            z = np.clip(rng.standard_t(self.dof, (n, len(self.mean))), -3.0, 3.0)
        elif self.dof is not None:
            t = np.isfinite(self.dof)
            tz = np.clip(rng.standard_t(np.where(t, self.dof, 1.0), (n, len(self.mean))),
                         -3.0, 3.0)
            z = np.where(t[None, :], tz, z)
        return self.mean[None, :] + self.sd[None, :] * z


@dataclass
class Fit:
    law: Law
    theta: np.ndarray
    coef: np.ndarray
    objective: float
    sigma: float  # relative noise level the objective was scaled with
    weights: np.ndarray  # data weights times final Huber weights
    fitted: np.ndarray
    cloud: np.ndarray  # theta rows near the optimum, resampled by the bootstrap
    prior: Prior | None  # as a Gaussian at the optimum
    penalty: Callable[[np.ndarray], float] | None = None  # shape prior, as in the fit

    def predict(self, design: Design, theta: np.ndarray | None = None) -> np.ndarray:
        th = self.theta if theta is None else theta
        return self.law.basis(th, design) @ self.coef

    @property
    def params(self) -> dict[str, float]:
        names = self.law.theta_names + self.law.coef_names
        return {n: float(v) for n, v in zip(names, np.concatenate([self.theta, self.coef]),
                                            strict=True)}


def huber(r: np.ndarray, delta: float = HUBER_DELTA) -> np.ndarray:
    """2 x Huber loss, so that small residuals cost r^2 as in least squares."""
    a = np.abs(r)
    return np.where(a <= delta, a * a, 2.0 * delta * a - delta * delta)


def solve_coef(
    x: np.ndarray, y: np.ndarray, w: np.ndarray, sigma: float, prior: Prior | None
) -> tuple[np.ndarray, float, np.ndarray]:
    """Huber-IRLS non-negative solve of y ~ x @ coef; returns (coef, objective, weights)."""
    xn = x / y[:, None]
    h = np.ones_like(y)
    coef = np.zeros(x.shape[1])
    if not np.isfinite(xn).all():  # the weights and the prior's rows are finite
        return coef, np.inf, w
    pw = np.ones(0 if prior is None else len(prior.mean))
    prior_cost = 0.0
    for _ in range(IRLS_ITERATIONS):
        sw = np.sqrt(w * h) / sigma
        a, b = xn * sw[:, None], sw
        if prior is not None:
            psw = np.sqrt(pw) / prior.sd
            a = np.vstack([a, prior.rows * psw[:, None]])
            b = np.concatenate([b, prior.mean * psw])
        coef = nnls(a, b, maxiter=50 * x.shape[1])[0]
        r = 1.0 - xn @ coef
        h = np.minimum(1.0, HUBER_DELTA / np.maximum(np.abs(r), 1e-300))
        if prior is not None:
            prior_cost, pw = prior.cost(coef)
    return coef, float(np.sum(w * huber(r)) / sigma**2) + prior_cost, w * h


def fit_law(
    law: Law,
    design: Design,
    y: np.ndarray,
    w: np.ndarray,
    start: Start,
    sigma: float,
    prior: Prior | None = None,
    n_polish: int = 2,
) -> Fit:
    """Grid of starts, then a local search of the continuous shape parameters from the best few."""

    def objective(theta: np.ndarray) -> float:
        extra = start.penalty(theta) if start.penalty is not None else 0.0
        try:
            with np.errstate(all="ignore"):
                return solve_coef(law.basis(theta, design), y, w, sigma, prior)[1] + extra
        except (ValueError, KeyError, FloatingPointError):
            return np.inf

    grid_obj = np.array([objective(t) for t in start.grid])
    cont = [i for i, b in enumerate(start.bounds) if b is not None]
    best_theta, best_obj = start.grid[int(np.argmin(grid_obj))], float(np.min(grid_obj))
    for k in np.argsort(grid_obj)[:n_polish]:
        if not np.isfinite(grid_obj[k]) or not cont:
            continue
        base = start.grid[k].astype(float).copy()

        def sub(z: np.ndarray, base: np.ndarray = base) -> float:
            th = base.copy()
            th[cont] = z
            return objective(th)

        z, value = _polish(sub, base, cont, start)
        if value < best_obj:
            best_obj, best_theta = value, base.copy()
            best_theta[cont] = z
    x = law.basis(best_theta, design)
    coef, _, wh = solve_coef(x, y, w, sigma, prior)
    return Fit(law, best_theta, coef, best_obj, sigma, wh, x @ coef,
               _cloud(best_theta, start, cont),
               None if prior is None else prior.effective(coef), start.penalty)


def _polish(sub: Callable[[np.ndarray], float], base: np.ndarray, cont: list[int],
            start: Start) -> tuple[np.ndarray, float]:
    """The continuous shape parameters ``cont`` moved from a grid point ``base`` to a nearby
    minimum of ``sub``: (their values, the objective there).

    Derivative-free on purpose. With Huber's small delta against a noisy curve the profiled
    objective is kinked in the shape parameters, often right at its minimum, and L-BFGS-B's
    finite-difference gradients and line searches spent 25-50 evaluations an iteration there
    and often ended 'ABNORMAL'. One parameter: Brent's bounded search between the grid's
    neighbours of the start (the grid has found the basin). More: a bounded Nelder-Mead
    simplex, restarted where it stopped until a restart gains little (a simplex collapsed
    against a bound stops short: one joint fit ended at 125.7 where L-BFGS-B reached 122.0,
    and a restart found it). On the 61 four-parameter joint fits of the real references that
    one run's forecasts make (bench/RESULTS.md, session 13) the restarted simplex ended lower
    than L-BFGS-B (summed objective 4,827 against 4,883) in 27 % less fitting time.
    """
    bounds = [start.bounds[i] for i in cont]
    if len(cont) == 1:
        (i,), (lo, hi) = cont, bounds[0]
        values = np.unique(start.grid[:, i])
        j = int(np.searchsorted(values, base[i]))
        lo = float(values[j - 1]) if j > 0 else lo
        hi = float(values[j + 1]) if j + 1 < len(values) else hi
        res = minimize_scalar(lambda z: sub(np.array([z])), bounds=(lo, hi), method="bounded",
                              options={"xatol": 1e-5})
        return np.array([res.x]), float(res.fun)
    z, value = base[cont], np.inf
    for _ in range(RESTARTS):
        res = minimize(sub, z, method="Nelder-Mead", bounds=bounds,
                       options={"xatol": SIMPLEX_SHAPE_TOLERANCE,
                                "fatol": SIMPLEX_OBJECTIVE_TOLERANCE,
                                "maxfev": 200 * len(cont)})
        gain = value - float(res.fun)
        if gain > 0:
            z, value = np.asarray(res.x), float(res.fun)
        if gain <= RESTART_GAIN:
            break
    return z, value


def _cloud(theta: np.ndarray, start: Start, cont: list[int]) -> np.ndarray:
    """Shape parameters around the optimum: what the bootstrap may re-choose per draw."""
    factors = np.array([0.8, 0.9, 1.0, 1.1, 1.25]) if len(cont) == 1 else np.array([0.85, 1, 1.15])
    rows = [theta.astype(float)]
    for i, bound in enumerate(start.bounds):
        new = []
        values = (np.clip(theta[i] * factors, *bound) if bound is not None
                  else np.unique(start.grid[:, i]))
        for r in rows:
            for v in values:
                t = r.copy()
                t[i] = v
                new.append(t)
        rows = new
    return np.unique(np.array(rows), axis=0)


def antithetic_normal(n: int, rng: np.random.Generator) -> np.ndarray:
    """n standard normal draws in pairs (z, -z): noise added to widen a band then has a sample
    mean of exactly zero, so it never moves the point forecast (with one seed for every
    forecast, plain draws moved all means the same way, by up to 0.3%)."""
    z = rng.standard_normal((n + 1) // 2)
    return np.concatenate([z, -z])[:n]


def block_indices(n: int, n_draws: int, rng: np.random.Generator) -> np.ndarray:
    """Moving-block bootstrap indices: residuals of a loss curve are autocorrelated."""
    length = int(np.clip(round(n / 8), 2, max(2, n)))
    n_blocks = -(-n // length)
    starts = rng.integers(0, max(1, n - length + 1), size=(n_draws, n_blocks))
    idx = (starts[:, :, None] + np.arange(length)[None, None, :]).reshape(n_draws, -1)
    return idx[:, :n]


def bootstrap(
    fit: Fit, design: Design, y: np.ndarray, pred: Design, n_draws: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Predictive draws (n_draws x len(pred.steps)) from residual-block resampling.

    Each draw refits the coefficients for every theta in the fit's cloud at once (normal
    equations, vectorised over draws) and keeps the best theta; prior means are redrawn, so
    what the prior left uncertain stays uncertain.
    """
    fitted = fit.fitted
    r = 1.0 - fitted / y
    r = r - np.average(r, weights=fit.weights)
    target = 1.0 / (1.0 - r[block_indices(len(y), n_draws, rng)])  # y*/fitted, (draws, n)
    w = fit.weights / fit.sigma**2
    if fit.prior is not None:
        pmean = fit.prior.draw_means(n_draws, rng)
        pw = 1.0 / fit.prior.sd**2
    best = np.full(n_draws, np.inf)
    out = np.tile(fit.predict(pred), (n_draws, 1))
    for theta in fit.cloud:
        with np.errstate(all="ignore"):
            x = fit.law.basis(theta, design) / fitted[:, None]
            xp = fit.law.basis(theta, pred)
        if not (np.isfinite(x).all() and np.isfinite(xp).all()):
            continue
        m = (x * w[:, None]).T @ x
        b = target @ (x * w[:, None])  # (draws, p)
        if fit.prior is not None:
            m = m + (fit.prior.rows * pw[:, None]).T @ fit.prior.rows
            b = b + (pmean * pw[None, :]) @ fit.prior.rows
        try:
            coef = np.linalg.solve(m + 1e-12 * np.trace(m) * np.eye(len(m)), b.T).T
        except np.linalg.LinAlgError:
            continue
        res = target - coef @ x.T
        obj = np.sum(w[None, :] * res**2, axis=1)
        if fit.prior is not None:
            obj += np.sum(pw[None, :] * (coef @ fit.prior.rows.T - pmean) ** 2, axis=1)
        if fit.penalty is not None:
            obj += fit.penalty(theta)
        obj[np.any(coef[:, 1:] < 0, axis=1)] = np.inf
        take = obj < best
        best[take] = obj[take]
        out[take] = coef[take] @ xp.T
    return out


def holdout_weights(errors: dict[str, float]) -> dict[str, float]:
    """Weights from held-back tail errors: inverse squared error, laws 3x worse dropped."""
    finite = {k: max(v, 1e-9) for k, v in errors.items() if np.isfinite(v)}
    if not finite:
        return {}
    best = min(finite.values())
    raw = {k: v**-2 for k, v in finite.items() if v <= 3.0 * best}
    total = sum(raw.values())
    return {k: v / total for k, v in raw.items()}
