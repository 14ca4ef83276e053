"""A run's forecast: check the curve, choose laws, use finished runs as priors, give an interval.

Pipeline: status checks (too little data, diverged, not loss-like) -> bin the curve after warmup
-> candidate laws (schedule-aware when the lr is known, schedule-free otherwise) -> each law is
scored on a held-back tail of the observed curve and weighted by that score -> the final fits are
bootstrapped over residual blocks and widened by the extrapolation error the tail test measured.
With finished reference runs, the shape parameters of the schedule-aware laws come from a joint
fit to them and only the levels are refitted on the partial curve; then each reference is
replayed at this run's progress, and the forecast is corrected by how wrong the replays were
(calibration.py). Joint fits and replays depend only on the references and are memoised.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from scipy.stats import spearmanr

from workers.forecast.calibration import MIN_RUNS, Calibration, calibration, final_value
from workers.forecast.fit import HUBER_DELTA, Fit, Prior, bootstrap, fit_law, holdout_weights
from workers.forecast.guesses import LAMBDAS, Start, starts
from workers.forecast.laws import LAWS, Design, Law
from workers.forecast.memo import Memo
from workers.forecast.schedule import Schedule, schedule_from_logged

MIN_POINTS = 8
FIT_BINS = 100
REF_BINS = 30
N_DRAWS = 200
CURVE_POINTS = 200
HOLDOUT = 0.3  # share of the observed span held back to score laws
DIVERGE_RATIO = 1.2  # loss 20% above its running minimum, or above its start: diverged
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
TRANSFER_SD = 0.1  # relative sd of amplitudes transferred from finished runs
# A reference teaches the annealing term only if its lr falls while observed; a fall of 10% of
# the peak is taken as enough to try (the joint fit's standard error then decides).
DECAY_SEEN = 0.1
# The held-back tail test measures the error of an extrapolation one tail length ahead; the
# forecast reaches h tail lengths ahead, and its misspecification sd is taken as
# HORIZON_SCALE * tail error * h ** HORIZON_POWER. Both were fitted by minimising the mean 90%
# interval score (Gneiting & Raftery 2007) over the 25M+100M dev curves (18 runs x 3 cuts x
# cold/warm; 400M held out): the optimum is flat along p in 0.4-0.5 (2.25% vs 2.40% at p=0.6
# and 4.0% for the former linear growth, p=1, k=1, which covered 98-100%). p=0.5 is the
# square-root growth of a random-walk drift; k=0.7 is the optimum at that p (covers 91%).
HORIZON_POWER = 0.5
HORIZON_SCALE = 0.7
# Calibration replays run at progress rounded down to 5% steps: one replay serves every batch
# of a run within the step (a slightly earlier cut only makes the replays a little harder).
CALIBRATION_STEP = 0.05
SHAPE_TOLERANCE = 0.1  # schedules alike: lr/peak within 0.1 at every 5% of the run


@dataclass(frozen=True)
class ReferenceRun:
    """A finished run of the same project/group, used as a prior."""

    steps: np.ndarray
    values: np.ndarray
    total_steps: int
    schedule: Schedule | None
    name: str = ""
    run_id: str = ""  # where it came from: names need not be unique


@dataclass
class TrajectoryForecast:
    status: str  # "ready" | "insufficient_data" | "diverged" | "not_loss_like"
    reason: str
    target_step: int
    model: str | None = None
    params: dict[str, float] = field(default_factory=dict)
    level: float = 0.9
    final_mean: float | None = None
    final_lower: float | None = None
    final_upper: float | None = None
    final_samples: np.ndarray | None = None
    curve_step: np.ndarray = field(default_factory=lambda: np.zeros(0))
    curve_mean: np.ndarray = field(default_factory=lambda: np.zeros(0))
    curve_lower: np.ndarray = field(default_factory=lambda: np.zeros(0))
    curve_upper: np.ndarray = field(default_factory=lambda: np.zeros(0))
    prior: str | None = None


@dataclass(frozen=True)
class _Curve:
    """A curve binned for fitting: bin means, counts as weights, per-point relative noise."""

    steps: np.ndarray
    values: np.ndarray
    weights: np.ndarray
    sigma: float


@dataclass
class _Candidate:
    law: Law
    start: Start
    prior: Prior | None
    prior_note: str | None = None
    sigma: float = 0.0  # model error seen on the references: floors the noise the fit assumes
    cold_anneal: bool = False  # the annealing drop comes from the default prior, not the refs


def _bin(steps: np.ndarray, values: np.ndarray, n_bins: int) -> _Curve:
    """Average into equal-width step bins (caps the cost, averages the noise out)."""
    lv = np.log(values)
    d2 = np.diff(lv, 2)
    sigma = 1.4826 * float(np.median(np.abs(d2 - np.median(d2)))) / np.sqrt(6) if d2.size else 0
    sigma = max(sigma, 1e-5)
    if len(steps) <= n_bins:
        return _Curve(steps.astype(float), values, np.ones(len(steps)), sigma)
    edges = np.linspace(steps[0], steps[-1] + 1e-9, n_bins + 1)
    idx = np.clip(np.searchsorted(edges, steps, side="right") - 1, 0, n_bins - 1)
    count = np.bincount(idx, minlength=n_bins)
    keep = count > 0
    mean_step = np.bincount(idx, weights=steps, minlength=n_bins)[keep] / count[keep]
    mean_val = np.bincount(idx, weights=values, minlength=n_bins)[keep] / count[keep]
    return _Curve(mean_step, mean_val, count[keep].astype(float), sigma)


def _design(sched: Schedule | None, steps: np.ndarray, horizon: int, drops: bool) -> Design:
    steps = np.asarray(steps, dtype=float)
    if sched is None:
        return Design(np.maximum(steps, 1.0))
    peak = sched.peak_lr(horizon)
    s1 = sched.forward_area(steps, horizon) / peak
    s2 = {round(lam, 6): sched.annealing_area(steps, lam, horizon) / peak for lam in LAMBDAS}
    dd = (sched.drop_design(steps, 1.0 / peak),) if drops else ()
    return Design(steps, np.maximum(s1, 1e-9), s2, dd)


def _stack(designs: Sequence[Design]) -> Design:
    s2 = None
    if designs[0].s2 is not None:
        s2 = {k: np.concatenate([d.s2[k] for d in designs]) for k in designs[0].s2}
    s1 = None if designs[0].s1 is None else np.concatenate([d.s1 for d in designs])
    drops = tuple(x for d in designs for x in d.drops)
    return Design(np.concatenate([d.steps for d in designs]), s1, s2, drops)


def _stacked_law(law: Law, run: np.ndarray, n_runs: int) -> Law:
    """The law with one offset per run and shared amplitudes and shape (joint fit of runs)."""
    onehot = (run[:, None] == np.arange(n_runs)[None, :]).astype(float)

    def basis(theta: np.ndarray, d: Design) -> np.ndarray:
        return np.hstack([onehot, law.basis(theta, d)[:, 1:]])

    names = tuple(f"offset{i}" for i in range(n_runs)) + law.coef_names[1:]
    return Law(law.name, law.theta_names, names, basis, law.needs_schedule)


def _status(steps: np.ndarray, values: np.ndarray, start_step: float) -> tuple[str, str] | None:
    bad = ~np.isfinite(values)
    if bad.any():
        return "diverged", f"the value is not finite at step {int(steps[np.argmax(bad)])}"
    post = steps >= start_step
    if post.sum() < MIN_POINTS:
        return ("insufficient_data",
                f"need at least {MIN_POINTS} points after warmup, have {int(post.sum())}")
    if np.any(values <= 0):
        return "not_loss_like", "values must be positive for a loss-like metric"
    v = values[post]
    k = max(3, len(v) // 10)
    head, tail = float(np.median(v[:k])), float(np.median(v[-k:]))
    rho = spearmanr(steps[post], v).statistic
    if rho > 0.5 and tail > head and np.argmin(v) < len(v) // 5:
        return "not_loss_like", f"the metric rises over the run ({head:.4g} -> {tail:.4g})"
    running_min = float(np.min(v[:-k])) if len(v) > k else head
    if tail > DIVERGE_RATIO * running_min or tail > max(v[0], head) * (1 + 1e-3) and rho > 0:
        return "diverged", f"the loss rose from {running_min:.4g} to {tail:.4g}"
    return None


def effective_schedule(schedule: Schedule | None, lr_steps: np.ndarray | None,
                       lr_values: np.ndarray | None, total_steps: int) -> Schedule | None:
    """The schedule a run follows: its logged lr, with the plan for what is still ahead."""
    if lr_steps is not None and lr_values is not None and len(lr_steps) > 0:
        return schedule_from_logged(np.asarray(lr_steps), np.asarray(lr_values), schedule,
                                    total_steps)
    return schedule


def _cold_candidates(curve: _Curve, design: Design, sched: Schedule | None) -> list[_Candidate]:
    if sched is None:
        return [_Candidate(LAWS[n], starts(n, curve.steps), None)
                for n in ("power_law", "shifted_power_law")]
    law = LAWS["lr_annealing"]
    start = starts("lr_annealing", curve.steps)
    # Without annealing (D pinned to 0): the forward power law, which sets the prior's scale.
    no_anneal = Prior(np.array([[0.0, 0.0, 1.0]]), np.zeros(1), np.array([1e-9]))
    base = fit_law(law, design, curve.values, curve.weights, start, curve.sigma, no_anneal, 1)
    d0 = _anneal_prior_mean(float(base.theta[0]), float(base.coef[1]), design, curve)
    prior = Prior(np.array([[0.0, 0.0, 1.0]]), np.array([d0]), np.array([ANNEAL_PRIOR_SD * d0]),
                  ANNEAL_PRIOR_DOF)
    # Smoothed curves have almost no noise, so tiny misfits of the law would overrule the
    # prior; laws are not better than ~0.1% (the Huber scale), so that floors the noise.
    return [_Candidate(law, start, prior, None, HUBER_DELTA)]


def _anneal_prior_mean(alpha: float, amp: float, design: Design, curve: _Curve) -> float:
    """Default annealing drop D: what doubling the lr area at the cut would gain."""
    s1_cut = float(design.s1[-1])
    d0 = ANNEAL_PRIOR_DOUBLINGS * amp * s1_cut**-alpha * (1.0 - 2.0**-alpha)
    return max(d0, 1e-4 * float(curve.values[-1]))


def _amplitude_se(joint: Fit, stacked: Design, y: np.ndarray, sigma: float) -> np.ndarray:
    """Standard errors of the joint fit's coefficients (linearised, at its shape): how well the
    references pin each one down. A coefficient whose basis column the references never
    excite (the annealing term of a constant-lr run) gets an effectively infinite one."""
    x = joint.law.basis(joint.theta, stacked) / y[:, None]
    m = (x * (joint.weights / sigma**2)[:, None]).T @ x
    ridge = 1e-12 * max(float(np.trace(m)), 1e-300)
    with np.errstate(all="ignore"):
        cov = np.linalg.inv(m + ridge * np.eye(len(m)))
    return np.sqrt(np.maximum(np.diag(cov), 0.0))


def _decay_seen(usable: Sequence[tuple[ReferenceRun, _Curve]]) -> bool:
    """Whether some reference's lr falls by a sizeable share of its peak while it is observed:
    only then can a joint fit learn what annealing gains."""
    for r, c in usable:
        if r.schedule is None:
            continue
        lr = r.schedule.lr(c.steps)
        peak = r.schedule.peak_lr(max(r.total_steps, 1))
        if peak > 0 and float(np.max(np.maximum.accumulate(lr) - lr)) >= DECAY_SEEN * peak:
            return True
    return False


@dataclass(frozen=True)
class _Joint:
    """One law fitted jointly to the references: what a warm candidate is built from."""

    name: str
    fit: Fit
    amps: np.ndarray  # shared amplitudes (the coefficients after the per-run offsets)
    sd: np.ndarray  # transferred prior width per amplitude
    se: np.ndarray  # the joint fit's standard error per amplitude
    known: np.ndarray  # amplitudes the references identify
    misfit: float
    refs_note: str


def _usable(refs: Sequence[ReferenceRun], scheduled: bool) -> list[tuple[ReferenceRun, _Curve]]:
    """References of the same kind (with or without a schedule), binned after warmup."""
    usable = []
    for r in refs:
        if (r.schedule is not None) != scheduled:
            continue
        s, v = np.asarray(r.steps, float), np.asarray(r.values, float)
        ok = np.isfinite(v) & (v > 0)
        start = r.schedule.peak_step(r.total_steps) if r.schedule is not None else 0
        ok &= s >= start
        if ok.sum() >= MIN_POINTS:
            usable.append((r, _bin(s[ok], v[ok], REF_BINS)))
    return usable


def _joint_fits(refs: Sequence[ReferenceRun], scheduled: bool) -> tuple[_Joint, ...]:
    """Each law fitted jointly to the usable references (they depend on nothing else, so the
    result is memoised: a run's forecasts, and the calibration replays, reuse it)."""
    return _JOINTS.get(_digest(refs, scheduled), lambda: _fit_joints(refs, scheduled))


def _fit_joints(refs: Sequence[ReferenceRun], scheduled: bool) -> tuple[_Joint, ...]:
    usable = _usable(refs, scheduled)
    if not usable:
        return ()
    names = ("lr_annealing", "multi_power") if scheduled else ("power_law",)
    run = np.concatenate([np.full(len(c.steps), i) for i, (_, c) in enumerate(usable)])
    y = np.concatenate([c.values for _, c in usable])
    w = np.concatenate([c.weights for _, c in usable])
    sigma = float(np.median([c.sigma for _, c in usable]))
    decays = scheduled and _decay_seen(usable)
    refs_note = f"{len(usable)} finished runs: " + ", ".join(r.name or "?" for r, _ in usable)
    out = []
    for name in names:
        if name == "multi_power" and not decays:
            continue
        designs = [_design(r.schedule, c.steps, max(r.total_steps, int(c.steps[-1])),
                           name == "multi_power") for r, c in usable]
        stacked = _stack(designs)
        law = LAWS[name]
        joint = fit_law(_stacked_law(law, run, len(usable)), stacked, y, w,
                        starts(name, usable[0][1].steps, _decay_span(usable)), sigma,
                        n_polish=1)
        amps = joint.coef[len(usable):]
        misfit = float(np.sqrt(np.average((1.0 - joint.fitted / y) ** 2, weights=w)))
        se = _amplitude_se(joint, stacked, y, max(sigma, misfit))[len(usable):]
        sd = TRANSFER_SD * np.abs(amps) + 1e-6 * float(np.mean(y))
        known = se <= sd
        if name == "lr_annealing":
            known[-1] &= decays  # D (last) needs an observed lr decay
        if name == "multi_power" and not known[-1]:
            continue
        out.append(_Joint(name, joint, amps, sd, se, known, misfit, refs_note))
    return tuple(out)


def _warm_candidates(
    refs: Sequence[ReferenceRun], sched: Schedule | None, curve: _Curve, horizon: int
) -> list[_Candidate]:
    """Fit each law jointly to the finished runs; transfer shape, prior on amplitudes.

    Only what the references identify is transferred: an amplitude whose joint-fit standard
    error is larger than its transferred prior's width would be (TRANSFER_SD) is not carried as
    a tight prior. For the annealing term that is the case when no reference decays its lr
    (constant-lr runs show no cooldown, so the joint fit puts D at ~0 on no evidence); the
    annealing law then keeps the references' power-law part (alpha, A) and falls back to the
    cold default prior on D with a free memory lam, and the multi-power law, whose shape is all
    about the decay, is not offered.
    """
    out = []
    for j in _joint_fits(refs, sched is not None):
        law = LAWS[j.name]
        if j.name == "lr_annealing" and not j.known[-1]:
            cand = _unseen_anneal_candidate(j.fit, j.amps, j.sd, j.known, curve, sched, horizon)
            alpha = float(j.fit.theta[0])
            cand.prior_note = (f"{j.name} power law (alpha={alpha:.3g}) from {j.refs_note}; "
                               "none of them decays its lr, so the annealing drop is priced "
                               "by the default prior")
            out.append(cand)
            continue
        # Transferred amplitudes keep their ±TRANSFER_SD prior, widened to the joint fit's
        # own standard error where that is larger (only the identified ones are kept).
        rows = np.eye(len(law.coef_names))[1:]
        known = j.known
        prior = (Prior(rows[known], j.amps[known], np.hypot(j.sd, j.se)[known])
                 if known.any() else None)
        shape = ", ".join(f"{n}={v:.3g}" for n, v in zip(law.theta_names, j.fit.theta,
                                                            strict=True))
        note = f"{j.name} shape ({shape}) and amplitudes from {j.refs_note}"
        fixed = Start(j.fit.theta[None, :], tuple(None for _ in law.theta_names))
        out.append(_Candidate(law, fixed, prior, note, j.misfit))
    return out


def _unseen_anneal_candidate(joint: Fit, amps: np.ndarray, sd: np.ndarray, known: np.ndarray,
                             curve: _Curve, sched: Schedule | None, horizon: int) -> _Candidate:
    """Annealing law with the references' power-law part but the cold prior on the drop D."""
    alpha = float(joint.theta[0])
    design = _design(sched, curve.steps, horizon, False)
    d0 = _anneal_prior_mean(alpha, float(amps[0]), design, curve)
    rows = [np.array([0.0, 1.0, 0.0])] if known[0] else []
    mean, width, dof = ([amps[0]], [sd[0]], [np.inf]) if known[0] else ([], [], [])
    prior = Prior(np.array(rows + [np.array([0.0, 0.0, 1.0])]), np.array(mean + [d0]),
                  np.array(width + [ANNEAL_PRIOR_SD * d0]), np.array(dof + [ANNEAL_PRIOR_DOF]))
    # The memory lam is not identified either: the cold grid and its penalty, alpha fixed.
    grid = np.column_stack([np.full(len(LAMBDAS), alpha), np.array(LAMBDAS)])
    start = Start(grid, (None, None), starts("lr_annealing", curve.steps).penalty)
    return _Candidate(LAWS["lr_annealing"], start, prior, None, HUBER_DELTA, cold_anneal=True)


def _decay_span(usable: Sequence[tuple[ReferenceRun, _Curve]]) -> float:
    """Typical number of steps over which the references' lr decays (multi-power timescale)."""
    spans = []
    for r, c in usable:
        if r.schedule is None:
            continue
        lr = r.schedule.lr(c.steps)
        falling = np.flatnonzero(np.diff(lr) < 0)
        if falling.size:
            spans.append(c.steps[falling[-1] + 1] - c.steps[falling[0]])
    return float(np.median(spans)) if spans else 1000.0


def _tail_error(cand: _Candidate, curve: _Curve, sched: Schedule | None, horizon: int) -> float:
    """Relative error at the end of a held-back tail, fitting only the head."""
    cut = curve.steps[0] + (1.0 - HOLDOUT) * (curve.steps[-1] - curve.steps[0])
    head = curve.steps <= cut
    if head.sum() < MIN_POINTS - 2 or (~head).sum() < 2:
        return np.nan
    drops = cand.law.name == "multi_power"
    d_head = _design(sched, curve.steps[head], horizon, drops)
    d_tail = _design(sched, curve.steps[~head], horizon, drops)
    f = fit_law(cand.law, d_head, curve.values[head], curve.weights[head], cand.start,
                max(curve.sigma, cand.sigma), cand.prior, 1)
    err = f.predict(d_tail) / curve.values[~head] - 1.0
    k = max(1, len(err) // 3)
    # The held-back points carry their own noise (sigma^2 / bin count, relative); it is not
    # extrapolation error and the bootstrap already prices it, so it is taken out of the mean
    # square. What the test cannot resolve (the noise of a k-point mean) floors the result.
    noise = float(np.mean(curve.sigma**2 / curve.weights[~head][-k:]))
    return float(np.sqrt(max(np.mean(err[-k:] ** 2) - noise, noise / k)))


def _widen(sim: np.ndarray, err: float | None, curve: _Curve, curve_step: np.ndarray,
           last: float, rng: np.random.Generator) -> np.ndarray:
    """Misspecification the bootstrap cannot see: the tail test's error, grown with horizon."""
    err = err if err is not None and np.isfinite(err) else 3.0 * curve.sigma
    tail_len = HOLDOUT * max(last - float(curve.steps[0]), 1.0)
    grow = (np.maximum(curve_step - last, 0.0) / tail_len) ** HORIZON_POWER
    sd = HORIZON_SCALE * err * grow
    # Antithetic pairs (z, -z): the widening is zero-median noise for the interval only, so
    # its sample mean must not shift the point forecast (with one seed for every forecast, a
    # plain draw moved all means the same way, by up to 0.3% at the old width).
    z = rng.standard_normal((len(sim) + 1) // 2)
    z = np.concatenate([z, -z])[: len(sim)]
    return sim * np.exp(sd[None, :] * z[:, None])


def forecast_trajectory(
    steps: np.ndarray,
    values: np.ndarray,
    *,
    total_steps: int,
    schedule: Schedule | None = None,
    lr_steps: np.ndarray | None = None,
    lr_values: np.ndarray | None = None,
    references: Sequence[ReferenceRun] = (),
    level: float = 0.9,
    seed: int = 0,
    calibrate: bool = True,
) -> TrajectoryForecast:
    """Forecast the metric at ``total_steps`` with a ``level`` interval and a curve to it.

    ``calibrate``: with finished references, replay them at this run's progress and correct
    the forecast by how wrong it was on them (off for those replays themselves).
    """
    steps = np.asarray(steps, dtype=float)
    values = np.asarray(values, dtype=float)
    order = np.argsort(steps, kind="stable")
    steps, values = steps[order], values[order]
    target = int(total_steps)
    result = TrajectoryForecast("insufficient_data", "", target, level=level)
    sched = effective_schedule(schedule, lr_steps, lr_values, target)
    horizon = max(target, sched.total_steps if sched else 0, int(steps[-1]) if len(steps) else 0)
    warmup_end = float(sched.peak_step(horizon)) if sched is not None else 0.0
    if len(steps) == 0:
        return replace(result, reason=f"need at least {MIN_POINTS} points after warmup, have 0")
    bad = _status(steps, values, warmup_end)
    if bad is not None:
        return replace(result, status=bad[0], reason=bad[1])
    post = steps >= warmup_end
    curve = _bin(steps[post], values[post], FIT_BINS)
    last = float(steps[-1])
    # A run at (or past) its target still gets its law fitted: its final value is the fitted
    # curve at its last step, not the last logged point, whose batch noise (a few % for small
    # batches, and shared by runs that see the same batches) would move every comparison with it.
    end = max(target, int(last))

    warm = _warm_candidates(references, sched, curve, horizon) if references else []
    design = _design(sched, curve.steps, horizon, any(c.law.name == "multi_power" for c in warm))
    cands = warm or _cold_candidates(curve, design, sched)
    # A law is scored on the held-back tail of this curve and, when transferred, also on how
    # well it fits the finished runs (which show the cooldowns this curve has not reached).
    errors = {c.law.name: float(np.hypot(_tail_error(c, curve, sched, horizon), c.sigma))
              for c in cands}
    weights = holdout_weights(errors) or {cands[0].law.name: 1.0}

    n_curve = min(CURVE_POINTS, max(2, end - int(last) + 1))
    curve_step = np.unique(np.round(np.linspace(last, end, n_curve)))
    rng = np.random.default_rng(seed)
    draws, fits = [], {}
    for c in cands:
        if c.law.name not in weights:
            continue
        n = max(1, int(round(weights[c.law.name] * N_DRAWS)))
        drops = c.law.name == "multi_power"
        d_fit = design if (drops or not design.drops) else replace(design, drops=())
        fit = fit_law(c.law, d_fit, curve.values, curve.weights, c.start,
                      max(curve.sigma, c.sigma), c.prior)
        fits[c.law.name] = (fit, c)
        pred = _design(sched, curve_step, horizon, drops)
        sim = bootstrap(fit, d_fit, curve.values, pred, n, rng)
        draws.append(_widen(sim, errors.get(c.law.name), curve, curve_step, last, rng))
    sim = np.vstack(draws)
    cal = (_calibrate(_alike(references, sched, horizon), last / end, seed)
           if calibrate and warm and last < end else None)
    if cal is not None:
        grow = np.clip((curve_step - last) / max(end - last, 1.0), 0.0, 1.0) ** HORIZON_POWER
        sim = cal.apply(sim, grow, rng)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(sim, [alpha, 1.0 - alpha], axis=0)
    mean = np.mean(sim, axis=0)
    top = max(weights, key=weights.get)
    fit, cand = fits[top]
    model = top if len(weights) == 1 else "mix(" + ",".join(
        f"{k}:{v:.2f}" for k, v in sorted(weights.items(), key=lambda kv: -kv[1])) + ")"
    reason = _reason(fit, errors)
    if last >= target:
        reason = ("the run has reached its target step: its final value is the fitted curve "
                  "there; " + reason)
    if sched is not None and (not warm or cand.cold_anneal):
        peak = sched.peak_lr(horizon)
        ahead = float(sched.lr(np.array([last]))[0] - sched.lr(np.array([float(target)]))[0])
        if ahead > 0.1 * peak:
            reason += ("; the lr decay still ahead is priced by the default annealing prior "
                       "(no finished run with lr decay to learn it from), hence the wide "
                       "interval")
    return replace(
        result, status="ready", reason=reason, model=model,
        params=_params(fit), final_mean=float(mean[-1]), final_lower=float(lo[-1]),
        final_upper=float(hi[-1]), final_samples=sim[:, -1].copy(), curve_step=curve_step,
        curve_mean=mean, curve_lower=lo, curve_upper=hi,
        prior="; ".join(n for n in (cand.prior_note, cal and cal.note()) if n) or None,
    )


def _digest(refs: Sequence[ReferenceRun], *extra: object) -> bytes:
    """Identity of the references' data (and of ``extra``) for the memos."""
    h = hashlib.blake2b(repr(extra).encode(), digest_size=16)
    for r in refs:
        h.update(repr((r.name, r.total_steps)).encode())
        h.update(np.asarray(r.steps, float).tobytes())
        h.update(np.asarray(r.values, float).tobytes())
        if r.schedule is not None:
            grid = np.linspace(0.0, float(max(r.total_steps, 1)), 65)
            h.update(np.asarray(r.schedule.lr(grid), float).tobytes())
    return h.digest()


_JOINTS: Memo[tuple[_Joint, ...]] = Memo(64)
_CALIBRATIONS: Memo[Calibration | None] = Memo(256)


def _shape(sched: Schedule, horizon: int) -> np.ndarray:
    """The lr schedule as a share of its peak at each 5% of its run: comparable across
    lengths and peak lrs."""
    grid = np.linspace(0.0, float(horizon), 21)
    return sched.lr(grid) / max(sched.peak_lr(horizon), 1e-300)


def same_shape(ref: ReferenceRun, sched: Schedule | None, horizon: int) -> bool:
    """Whether ``ref`` ran the schedule shape ``sched`` plans (lr / peak within
    SHAPE_TOLERANCE at every 5% of the run), or, without schedules, neither had one."""
    if ref.schedule is None or sched is None:
        return ref.schedule is None and sched is None
    return bool(np.max(np.abs(_shape(ref.schedule, max(ref.total_steps, 1))
                              - _shape(sched, horizon))) <= SHAPE_TOLERANCE)


def _alike(refs: Sequence[ReferenceRun], sched: Schedule | None,
           horizon: int) -> list[ReferenceRun]:
    """The references to replay: those forecast the way this run is (with a schedule or
    without), and of them the ones with this run's schedule shape when there are enough: a
    forecaster errs differently before a cooldown than on a constant lr."""
    kind = [r for r in refs if (r.schedule is None) == (sched is None)]
    same = [r for r in kind if same_shape(r, sched, horizon)]
    return same if len(same) >= MIN_RUNS else kind


def _calibrate(refs: Sequence[ReferenceRun], progress: float, seed: int) -> Calibration | None:
    """Each reference cut at ``progress`` (in CALIBRATION_STEPs) of its planned steps and
    forecast with the others as its references (leave one out), against how it ended."""
    at = np.floor(progress / CALIBRATION_STEP + 1e-9) * CALIBRATION_STEP
    return _CALIBRATIONS.get(_digest(refs, round(at, 6), seed),
                             lambda: _replay(refs, at, seed))


def _replay(refs: Sequence[ReferenceRun], progress: float, seed: int) -> Calibration | None:
    predicted, actual = [], []
    for i, r in enumerate(refs):
        steps, values = np.asarray(r.steps, float), np.asarray(r.values, float)
        cut = steps <= progress * r.total_steps
        if not cut.any() or not np.isfinite(values).all():
            continue
        fc = forecast_trajectory(steps[cut], values[cut], total_steps=r.total_steps,
                                 schedule=r.schedule, references=[*refs[:i], *refs[i + 1:]],
                                 seed=seed, calibrate=False)
        if fc.status == "ready" and fc.final_samples is not None:
            predicted.append(fc.final_samples)
            actual.append(final_value(steps, values))
    return calibration(predicted, actual)


def _params(fit: Fit) -> dict[str, float]:
    params = fit.params
    if fit.law.name == "lr_annealing":
        params["C"] = params["D"] * (1.0 - params["lam"])
    if fit.law.name == "multi_power":
        params["C"] = float(np.exp(params.pop("log_C")))
    return params


def _reason(fit: Fit, errors: dict[str, float]) -> str:
    scores = ", ".join(f"{k} {v * 100:.2g}%" for k, v in errors.items() if np.isfinite(v))
    return f"fitted {fit.law.name}" + (f"; held-back tail error {scores}" if scores else "")
