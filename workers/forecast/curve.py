"""A curve as the fits see it: binned after warmup, its lr design, and the candidates.

Shared by a run's own forecast (trajectory.py) and the laws transferred from finished runs
(transfer.py), with the default prior on an annealing drop that no data have shown yet.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from workers.forecast.fit import Prior
from workers.forecast.guesses import LAMBDAS, Start
from workers.forecast.laws import Design, Law
from workers.forecast.schedule import Schedule

MIN_POINTS = 8
# Cold prior on the annealing drop D (an unseen cooldown cannot be measured): a full anneal
# of the peak lr gains about as much as doubling the lr area would, +-50% (Student-t).
# Checked against full-curve fits of the 25M+100M dev runs (30 run x cut pairs with lr decay
# still ahead): D / prior mean has geometric mean 1.06 and log-sd 0.30, so the magnitude and
# width hold on average; but it drifts with the cut (~0.75 at 25%, ~1.1 at 50%, ~1.4 at 75%):
# D is nearly constant in absolute terms while the doubling gain at the cut shrinks, which is
# why late-cut WSD forecasts sit high. A default memory lam=0.997 (the 25M+100M fits' geometric
# mean) was tried and not kept: better at 50-75% cuts, worse at 25%. Anchoring the doubling
# at the first post-warmup point instead of the cut removes the drift (25M+100M: 0.47x, log-sd
# 0.24; 400M 0.58x) but blows up for runs logged from step ~0 without warmup, and every dev run
# shares one warmup, so it is left as a lead rather than a default.
ANNEAL_PRIOR_DOUBLINGS = 1.0
ANNEAL_PRIOR_SD = 0.5
ANNEAL_PRIOR_DOF = 2.0  # heavy-tailed: a cooldown the data do show overrules the guess


@dataclass(frozen=True)
class ReferenceRun:
    """A finished run of the same project/group, used as a prior."""

    steps: np.ndarray
    values: np.ndarray
    total_steps: int
    schedule: Schedule | None
    name: str = ""
    run_id: str = ""  # where it came from: names need not be unique


@dataclass(frozen=True)
class Curve:
    """A curve binned for fitting: bin means, counts as weights, per-point relative noise."""

    steps: np.ndarray
    values: np.ndarray
    weights: np.ndarray
    sigma: float


@dataclass
class Candidate:
    law: Law
    start: Start
    prior: Prior | None
    prior_note: str | None = None
    sigma: float = 0.0  # model error seen on the references: floors the noise the fit assumes
    cold_anneal: bool = False  # the annealing drop comes from the default prior, not the refs


def bin_curve(steps: np.ndarray, values: np.ndarray, n_bins: int) -> Curve:
    """Average into equal-width step bins (caps the cost, averages the noise out)."""
    lv = np.log(values)
    d2 = np.diff(lv, 2)
    sigma = 1.4826 * float(np.median(np.abs(d2 - np.median(d2)))) / np.sqrt(6) if d2.size else 0
    sigma = max(sigma, 1e-5)
    if len(steps) <= n_bins:
        return Curve(steps.astype(float), values, np.ones(len(steps)), sigma)
    edges = np.linspace(steps[0], steps[-1] + 1e-9, n_bins + 1)
    idx = np.clip(np.searchsorted(edges, steps, side="right") - 1, 0, n_bins - 1)
    count = np.bincount(idx, minlength=n_bins)
    keep = count > 0
    mean_step = np.bincount(idx, weights=steps, minlength=n_bins)[keep] / count[keep]
    mean_val = np.bincount(idx, weights=values, minlength=n_bins)[keep] / count[keep]
    return Curve(mean_step, mean_val, count[keep].astype(float), sigma)


def design_for(sched: Schedule | None, steps: np.ndarray, horizon: int, drops: bool) -> Design:
    steps = np.asarray(steps, dtype=float)
    if sched is None:
        return Design(np.maximum(steps, 1.0))
    peak = sched.peak_lr(horizon)
    s1 = sched.forward_area(steps, horizon) / peak
    s2 = {round(lam, 6): sched.annealing_area(steps, lam, horizon) / peak for lam in LAMBDAS}
    dd = (sched.drop_design(steps, 1.0 / peak),) if drops else ()
    return Design(steps, np.maximum(s1, 1e-9), s2, dd)


def anneal_prior_mean(alpha: float, amp: float, design: Design, curve: Curve) -> float:
    """Default annealing drop D: what doubling the lr area at the cut would gain."""
    s1_cut = float(design.s1[-1])
    d0 = ANNEAL_PRIOR_DOUBLINGS * amp * s1_cut**-alpha * (1.0 - 2.0**-alpha)
    return max(d0, 1e-4 * float(curve.values[-1]))
