"""How wrong a scaling fit is likely to be beyond its parameter uncertainty.

A bootstrap over runs only measures how much the parameters move when the runs are
resampled; it says nothing about the law being slightly the wrong shape, which is what
dominates once a prediction leaves the fitted compute range. Predictions therefore carry
three variances, all on log-loss:

    var = var_bootstrap(x) + h(x)^2 (sigma_noise^2 + (kappa * d(x))^2)

- sigma_noise: run-to-run scatter around the law, a robust (MAD) scale of the fit residuals.
- d(x) = max(0, ln(C / C_max_fit)): how far the prediction extrapolates in compute.
- kappa: extrapolation error per e-fold of compute, measured on the fit set itself by
  leave-future-out refits: fit on the runs below a compute cut, predict the runs above it,
  and choose kappa so that the median of (e/h)^2 / (sigma^2 + var_boot/h^2 + kappa^2 d^2)
  equals the chi-square(1) median, where var_boot comes from a small bootstrap of each cut's
  fit. So kappa only covers what noise and parameter uncertainty do not, and the median keeps
  a single wild run from inflating every interval.
- h(x) = epochs^s: how much worse the law does on runs that repeat their data
  (`repetition_noise`); 1 when no fitted run repeats data.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from scipy.optimize import brentq, linprog
from scipy.stats import chi2

from workers.forecast.scaling_fit import Fitter, bootstrap, subset
from workers.forecast.scaling_laws import Inputs

CUT_DECADES = (0.5, 1.0, 1.5)  # leave-future-out cuts, in decades of compute below the max
CUT_BOOT = 30  # bootstrap draws per cut: enough for a variance, cheap enough for a worker
_CHI2_MEDIAN = float(chi2.ppf(0.5, 1))
_MAD_TO_SD = 1.4826


def noise_scale(residuals: np.ndarray, n_params: int) -> float:
    """Robust sd of residuals about the fit, corrected for the degrees of freedom used."""
    n = len(residuals)
    mad = _MAD_TO_SD * float(np.median(np.abs(residuals)))
    return mad * np.sqrt(n / max(n - n_params, 1))


def repetition_noise(
    residuals: np.ndarray, log_epochs: np.ndarray, n_params: int
) -> tuple[float, float]:
    """(sigma, s): the scatter of single-epoch runs, and its growth h = epochs^s.

    A law fits runs that repeat their data little far better than heavily repeated ones
    (Muennighoff et al.'s saturating form cannot follow a loss that rises from overfitting), so
    one pooled scale is too wide for the first and too narrow for the second. The median
    regression of log|r| on log epochs is the MAD with a trend (median |r| = sd / 1.4826 for
    normal scatter). s is kept >= 0: repeating data never makes a law more exact. Runs that
    all share one epoch count give exactly `noise_scale` and s = 0.
    """
    if np.ptp(log_epochs) < 1e-6:
        return noise_scale(residuals, n_params), 0.0
    intercept, slope = _median_line(log_epochs, np.log(np.maximum(np.abs(residuals), 1e-12)))
    n = len(residuals)
    return _MAD_TO_SD * float(np.exp(intercept)) * np.sqrt(n / max(n - n_params, 1)), slope


def _median_line(z: np.ndarray, v: np.ndarray) -> tuple[float, float]:
    """Least-absolute-deviations line v = c + s z with s >= 0, as a linear program.

    Variables (c, s, u, w): minimise sum(u + w) subject to c + s z + u - w = v, u, w >= 0.
    """
    n = len(z)
    eye = sparse.identity(n, format="csr")
    res = linprog(
        np.concatenate([[0.0, 0.0], np.ones(2 * n)]),
        A_eq=sparse.hstack([sparse.csr_matrix(np.column_stack([np.ones(n), z])), eye, -eye]),
        b_eq=v,
        bounds=[(None, None), (0.0, None)] + [(0.0, None)] * (2 * n),
        method="highs",
    )
    return float(res.x[0]), float(res.x[1])


def repetition_factor(slope: float, x: Inputs) -> np.ndarray:
    """h(x) = epochs^slope, the factor on a law's noise and extrapolation error at `x`."""
    return np.exp(slope * (x.log_d - x.log_u))


def extrapolation_distance(log_c: np.ndarray, log_c_max: float) -> np.ndarray:
    return np.maximum(np.asarray(log_c) - log_c_max, 0.0)


def future_errors(
    fitter: Fitter,
    x: Inputs,
    y: np.ndarray,
    scale: np.ndarray,
    min_points: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Errors, distances, bootstrap variances and indices of leave-future-out predictions."""
    errs, dists, boot_vars, ahead_idx = [], [], [], []
    top = float(x.log_c.max())
    for decades in CUT_DECADES:
        past = np.flatnonzero(x.log_c <= top - decades * np.log(10.0))
        future = np.flatnonzero(x.log_c > top - decades * np.log(10.0))
        sub = subset(x, past)
        if len(past) < min_points or len(future) == 0 or fitter.missing(sub):
            continue
        theta = fitter.fit(sub, y[past], scale[past])
        ahead = subset(x, future)
        draws = bootstrap(fitter, sub, y[past], scale[past], theta, CUT_BOOT, rng)
        boot = np.array([fitter.predict(t, ahead) for t in draws]).reshape(-1, len(future))
        errs.append(y[future] - fitter.predict(theta, ahead))
        dists.append(extrapolation_distance(x.log_c[future], float(sub.log_c.max())))
        boot_vars.append(robust_var(boot) if len(boot) > 2 else np.zeros(len(future)))
        ahead_idx.append(future)
    if not errs:
        return np.empty(0), np.empty(0), np.empty(0), np.empty(0, int)
    return (
        np.concatenate(errs),
        np.concatenate(dists),
        np.concatenate(boot_vars),
        np.concatenate(ahead_idx),
    )


def robust_var(draws: np.ndarray) -> np.ndarray:
    """Variance from the central 68% of draws (bootstrap refits can have a wild tail)."""
    lo, hi = np.percentile(draws, [15.87, 84.13], axis=0)
    return ((hi - lo) / 2.0) ** 2


def extrapolation_kappa(
    errors: np.ndarray, dists: np.ndarray, boot_vars: np.ndarray, sigma: float
) -> float:
    """kappa such that median(e^2 / (sigma^2 + var_boot + kappa^2 d^2)) is the chi2(1) median."""
    if len(errors) == 0 or not np.any(dists > 0):
        return 0.0
    floor = max(sigma, 1e-6) ** 2 + boot_vars

    def excess(kappa: float) -> float:
        return float(np.median(errors**2 / (floor + (kappa * dists) ** 2))) - _CHI2_MEDIAN

    if excess(0.0) <= 0.0:
        return 0.0
    hi = 1.0
    while excess(hi) > 0.0 and hi < 1e3:
        hi *= 4.0
    return float(brentq(excess, 0.0, hi)) if excess(hi) <= 0.0 else hi
