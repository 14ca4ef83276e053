"""Formula side of the cross-run scaling laws: designs, starting grids, natural parameters.

Every law except the data-constrained one is a log-sum-exp of terms that are *linear* in the
raw (log-space) parameters, as in Besiroglu et al. 2024:

    log L = LSE_k(Phi_k @ theta)      e.g. chinchilla: LSE(a - alpha log N, b - beta log D, e)

so one design tensor Phi (terms x points x params) gives the prediction and its exact gradient.
Keeping the parametrisation in log space keeps A, B, E positive without bounds and makes
the Huber loss act on relative errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

LAWS = ("chinchilla", "compute", "data_constrained", "overtraining", "loglinear")


@dataclass(frozen=True)
class Inputs:
    """Log-space inputs of a set of points (or of one prediction)."""

    log_n: np.ndarray
    log_d: np.ndarray
    log_c: np.ndarray
    log_u: np.ndarray  # unique tokens; equal to log_d when data is not repeated


def make_inputs(
    params: np.ndarray, tokens: np.ndarray, flops: np.ndarray, unique: np.ndarray
) -> Inputs:
    """Build inputs; missing FLOPs (nan) default to 6ND and missing unique tokens to D."""
    params, tokens = np.asarray(params, float), np.asarray(tokens, float)
    flops = np.where(np.isfinite(flops), flops, 6.0 * params * tokens)
    unique = np.where(np.isfinite(unique), np.minimum(unique, tokens), tokens)
    return Inputs(np.log(params), np.log(tokens), np.log(flops), np.log(unique))


@dataclass(frozen=True)
class LinearLSELaw:
    """A law log L = LSE_k(Phi_k theta); `grid` holds per-parameter starting values."""

    name: str
    raw_names: tuple[str, ...]
    grid: tuple[tuple[float, ...], ...]

    def design(self, x: Inputs) -> np.ndarray:
        """(terms, points, params) design tensor."""
        one, zero = np.ones_like(x.log_n), np.zeros_like(x.log_n)
        if self.name == "chinchilla":
            # theta = (a, b, e, alpha, beta)
            t1 = [one, zero, zero, -x.log_n, zero]
            t2 = [zero, one, zero, zero, -x.log_d]
            t3 = [zero, zero, one, zero, zero]
            return np.array([np.stack(t, -1) for t in (t1, t2, t3)])
        if self.name == "overtraining":
            # theta = (a, b, e, eta): L = E + (a M^eta + b M^-eta) C^-eta, M = D/N
            log_m = x.log_d - x.log_n
            t1 = [one, zero, zero, log_m - x.log_c]
            t2 = [zero, one, zero, -log_m - x.log_c]
            t3 = [zero, zero, one, zero]
            return np.array([np.stack(t, -1) for t in (t1, t2, t3)])
        if self.name == "compute":
            # theta = (a, e, alpha): L = E + A C^-alpha
            t1 = [one, zero, -x.log_c]
            t2 = [zero, one, zero]
            return np.array([np.stack(t, -1) for t in (t1, t2)])
        if self.name == "loglinear":
            # theta = (c, k): log L = c - k log C (one term, so LSE is the identity)
            return np.array([np.stack([one, -x.log_c], -1)])
        raise ValueError(f"unknown law {self.name!r}")

    def natural(self, theta: np.ndarray) -> dict[str, float]:
        """Human-facing parameters (E, A, B, exponents) from raw ones."""
        t = [float(v) for v in theta]
        if self.name == "chinchilla":
            a, b, e, alpha, beta = t
            return {"E": np.exp(e), "A": np.exp(a), "B": np.exp(b), "alpha": alpha, "beta": beta}
        if self.name == "overtraining":
            a, b, e, eta = t
            return {"E": np.exp(e), "a": np.exp(a), "b": np.exp(b), "eta": eta}
        if self.name == "compute":
            a, e, alpha = t
            return {"E": np.exp(e), "A": np.exp(a), "alpha": alpha}
        c, k = t
        return {"log_intercept": c, "slope": k}


_EXP = (0.0, 0.5, 1.0, 1.5, 2.0)  # exponent starts
_COEF = (0.0, 5.0, 10.0, 15.0, 20.0, 25.0)  # log-coefficient starts
_IRRED = (-1.0, -0.5, 0.0, 0.5, 1.0)  # log-E starts
# Besiroglu et al. 2024's grid, used as starting points for L-BFGS.
LINEAR_LAWS: Mapping[str, LinearLSELaw] = {
    "chinchilla": LinearLSELaw(
        "chinchilla", ("a", "b", "e", "alpha", "beta"), (_COEF, _COEF, _IRRED, _EXP, _EXP)
    ),
    "overtraining": LinearLSELaw(
        "overtraining", ("a", "b", "e", "eta"), (_COEF, _COEF, _IRRED, (0.0, 0.1, 0.25, 0.5, 1.0))
    ),
    "compute": LinearLSELaw(
        "compute", ("a", "e", "alpha"), (_COEF + (30.0,), _IRRED, (0.0, 0.05, 0.1, 0.2, 0.5, 1.0))
    ),
    "loglinear": LinearLSELaw("loglinear", ("c", "k"), ((0.0, 5.0), (0.0, 0.1))),
}


def lse_predict(phi: np.ndarray, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """log L and its gradient (points x params) for design `phi`."""
    z = phi @ theta  # (terms, points)
    zmax = z.max(axis=0)
    w = np.exp(z - zmax)
    s = w.sum(axis=0)
    pred = zmax + np.log(s)
    grad = np.einsum("kn,knp->np", w / s, phi)
    return pred, grad


def chinchilla_optimal_n(nat: Mapping[str, float], compute: np.ndarray) -> np.ndarray:
    """Compute-optimal N*(C) of E + A/N^alpha + B/D^beta under C = 6ND (Hoffmann et al. eq. 4)."""
    alpha, beta, a_, b_ = nat["alpha"], nat["beta"], nat["A"], nat["B"]
    g = (alpha * a_ / (beta * b_)) ** (1.0 / (alpha + beta))
    return g * (np.asarray(compute) / 6.0) ** (beta / (alpha + beta))


def data_constrained_inputs(
    nat: Mapping[str, float], x: Inputs, log_rn: float, log_rd: float
) -> Inputs:
    """Effective N', D' of Muennighoff et al. 2023 (eqs. 5-6) as chinchilla inputs.

    D' = U_D + U_D R_D* (1 - exp(-R_D / R_D*)), R_D = D/U_D - 1 repeated epochs;
    N' likewise with U_N = min(N*(U_D), N): parameters beyond those compute-optimal for the
    unique data decay with the same saturating form.
    """
    u_d = np.exp(x.log_u)
    r_d = np.maximum(np.exp(x.log_d - x.log_u) - 1.0, 0.0)
    rd_star, rn_star = np.exp(log_rd), np.exp(log_rn)
    d_eff = u_d * (1.0 + rd_star * (1.0 - np.exp(-r_d / rd_star)))
    n = np.exp(x.log_n)
    # N*(D) from D = C/(6N) at the optimum: invert D*(C) = C / (6 N*(C)).
    alpha, beta = nat["alpha"], nat["beta"]
    g = (alpha * nat["A"] / (beta * nat["B"])) ** (1.0 / (alpha + beta))
    u_n = np.minimum(g ** ((alpha + beta) / alpha) * u_d ** (beta / alpha), n)
    r_n = np.maximum(n / u_n - 1.0, 0.0)
    n_eff = u_n * (1.0 + rn_star * (1.0 - np.exp(-r_n / rn_star)))
    return Inputs(np.log(n_eff), np.log(d_eff), x.log_c, x.log_u)
