"""Cross-run priors: each law fitted jointly to a project's finished runs (shared shape and
amplitudes, one offset per run), and the warm candidates that carry what those fits identify
to a partial curve. Joint fits depend only on the references, so they are memoised.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from workers.forecast.curve import (
    ANNEAL_PRIOR_DOF,
    ANNEAL_PRIOR_SD,
    MIN_POINTS,
    Candidate,
    Curve,
    ReferenceRun,
    anneal_prior_mean,
    bin_curve,
    design_for,
)
from workers.forecast.fit import HUBER_DELTA, Fit, Prior, fit_law
from workers.forecast.guesses import LAMBDAS, Start, starts
from workers.forecast.laws import LAWS, Design, Law
from workers.forecast.memo import Memo
from workers.forecast.schedule import Schedule

REF_BINS = 30
NEAR_FROM = 0.3  # curves are compared from 30% of the run's last step on (past the transient)
TRANSFER_SD = 0.1  # relative sd of amplitudes transferred from finished runs
# A reference teaches the annealing term only if its lr falls while observed; a fall of 10% of
# the peak is taken as enough to try (the joint fit's standard error then decides).
DECAY_SEEN = 0.1
# The annealing drop grows with the peak lr it anneals from (the WSD cooldown gains of the real
# LR sweeps in bench/data/tinylm: 0.004 -> 0.210 nats from lr 5e-4 to 5e-2). When the references
# ran at several peaks, the joint fit learns D_i = D (peak_i / top peak)^beta, beta in this
# range (0: the drop does not depend on the peak, in each run's own peak units).
PEAK_BETAS = (0.0, 0.5, 1.0)
PEAK_BETA_BOUNDS = (0.0, 2.0)
PEAKS_DIFFER = 1.05  # references whose peaks span less than this ratio share one drop


def nearest(refs: Sequence[ReferenceRun], steps: np.ndarray, values: np.ndarray,
            k: int) -> list[ReferenceRun]:
    """The ``k`` references whose curves are most like this run's where it was observed.

    A joint fit gives every reference its own level but one shape, so references that bend
    differently (the far lrs of an LR sweep) pull the transferred shape off this run's. Alike
    is the spread of the log ratio of the two curves from NEAR_FROM of the run's last step on:
    blind to a level offset, not to a different slope. Ties keep the given order (latest
    first); a reference that does not reach that span comes last.
    """
    if len(refs) <= k:
        return list(refs)
    steps, values = np.asarray(steps, float), np.asarray(values, float)
    window = steps >= NEAR_FROM * steps[-1]

    def spread(r: ReferenceRun) -> float:
        rs, rv = np.asarray(r.steps, float), np.asarray(r.values, float)
        ok = np.isfinite(rv) & (rv > 0)
        if not ok.any():
            return np.inf
        rs, rv = rs[ok], rv[ok]
        seen = window & (steps >= rs[0]) & (steps <= rs[-1])
        if seen.sum() < MIN_POINTS:
            return np.inf
        return float(np.std(np.log(values[seen]) - np.log(np.interp(steps[seen], rs, rv))))

    return sorted(refs, key=spread)[:k]


def _stack(designs: Sequence[Design]) -> Design:
    s2 = None
    if designs[0].s2 is not None:
        s2 = {k: np.concatenate([d.s2[k] for d in designs]) for k in designs[0].s2}
    s1 = None if designs[0].s1 is None else np.concatenate([d.s1 for d in designs])
    drops = tuple(x for d in designs for x in d.drops)
    return Design(np.concatenate([d.steps for d in designs]), s1, s2, drops)


def _stacked_law(law: Law, run: np.ndarray, n_runs: int,
                 log_peak: np.ndarray | None = None) -> Law:
    """The law with one offset per run and shared amplitudes and shape (joint fit of runs).

    ``log_peak`` (per run, log of its peak lr over the top one): the last amplitude (the
    annealing drop) is scaled per run by exp(beta * log_peak), beta an extra shape parameter.
    """
    onehot = (run[:, None] == np.arange(n_runs)[None, :]).astype(float)
    n_theta = len(law.theta_names)

    def basis(theta: np.ndarray, d: Design) -> np.ndarray:
        x = law.basis(theta[:n_theta], d)[:, 1:]
        if log_peak is not None:
            x[:, -1] *= np.exp(theta[n_theta] * log_peak[run])
        return np.hstack([onehot, x])

    names = tuple(f"offset{i}" for i in range(n_runs)) + law.coef_names[1:]
    theta_names = law.theta_names + (("beta",) if log_peak is not None else ())
    return Law(law.name, theta_names, names, basis, law.needs_schedule)


def _with_beta(start: Start) -> Start:
    """The starting grid with the peak exponent beta as one more shape parameter."""
    grid = np.array([[*row, b] for row in start.grid for b in PEAK_BETAS])
    return Start(grid, (*start.bounds, PEAK_BETA_BOUNDS), start.penalty)


def _log_peaks(usable: Sequence[tuple[ReferenceRun, Curve]]
               ) -> tuple[np.ndarray, float] | None:
    """Each reference's log peak lr over the top one, and the top peak; None when they share
    one peak."""
    peaks = np.array([r.schedule.peak_lr(max(r.total_steps, 1)) for r, _ in usable])
    if not np.all(peaks > 0) or peaks.max() < PEAKS_DIFFER * peaks.min():
        return None
    return np.log(peaks / peaks.max()), float(peaks.max())


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


def _decay_seen(usable: Sequence[tuple[ReferenceRun, Curve]]) -> bool:
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


def _amplitudes(joint: Fit, stacked: Design, y: np.ndarray, w: np.ndarray, sigma: float,
                n_runs: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """A joint fit's shared amplitudes, their transferred prior width (TRANSFER_SD), their
    standard errors and the fit's misfit (rms relative residual)."""
    amps = joint.coef[n_runs:]
    misfit = float(np.sqrt(np.average((1.0 - joint.fitted / y) ** 2, weights=w)))
    se = _amplitude_se(joint, stacked, y, max(sigma, misfit))[n_runs:]
    sd = TRANSFER_SD * np.abs(amps) + 1e-6 * float(np.mean(y))
    return amps, sd, se, misfit


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
    decays: bool  # some reference's lr falls while observed
    top_peak: float | None = None  # the drop D is the top-peak run's (beta = theta[-1])

    def drop_scale(self, sched: Schedule | None, horizon: int) -> float:
        """How a run at this schedule's peak scales the transferred drop (and its prior's
        width): (peak / top)^beta, extrapolated above 1 beyond the references' top peak.
        Not capped at 1: capped, the best run of a simulated sweep (a high-lr WSD run) was
        judged before its cooldown with too small a gain and stopped."""
        if self.top_peak is None or sched is None:
            return 1.0
        ratio = sched.peak_lr(horizon) / self.top_peak
        return float(ratio ** self.fit.theta[-1])


def _usable(refs: Sequence[ReferenceRun], scheduled: bool) -> list[tuple[ReferenceRun, Curve]]:
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
            usable.append((r, bin_curve(s[ok], v[ok], REF_BINS)))
    return usable


def joint_fits(refs: Sequence[ReferenceRun], scheduled: bool) -> tuple[_Joint, ...]:
    """Each law fitted jointly to the usable references (they depend on nothing else, so the
    result is memoised: a run's forecasts, and the calibration replays, reuse it)."""
    return JOINTS.get(digest(refs, scheduled), lambda: _fit_joints(refs, scheduled))


def joint_fits_made(refs: Sequence[ReferenceRun], scheduled: bool) -> bool:
    """Whether joint_fits of ``refs`` is memoised in this process."""
    return not JOINTS.absent([digest(refs, scheduled)])


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
    span = _decay_span(usable)

    def fit(name: str, stacked: Design, log_peak: np.ndarray | None
            ) -> tuple[Fit, tuple[np.ndarray, np.ndarray, np.ndarray, float]]:
        start = starts(name, usable[0][1].steps, span)
        start = _with_beta(start) if log_peak is not None else start
        joint = fit_law(_stacked_law(LAWS[name], run, len(usable), log_peak), stacked, y, w,
                        start, sigma, n_polish=1)
        return joint, _amplitudes(joint, stacked, y, w, sigma, len(usable))

    out = []
    for name in names:
        if name == "multi_power" and not decays:
            continue
        designs = [design_for(r.schedule, c.steps, max(r.total_steps, int(c.steps[-1])),
                           name == "multi_power") for r, c in usable]
        stacked = _stack(designs)
        peaks = _log_peaks(usable) if name == "lr_annealing" and decays else None
        joint, (amps, sd, se, misfit) = fit(name, stacked, peaks[0] if peaks else None)
        if peaks is not None and se[-1] > sd[-1]:
            # Too few references to tell the peak's effect from the drop: one drop for all.
            peaks = None
            joint, (amps, sd, se, misfit) = fit(name, stacked, None)
        known = se <= sd
        if name == "lr_annealing":
            known[-1] &= decays  # D (last) needs an observed lr decay
        if name == "multi_power" and not known[-1]:
            continue
        out.append(_Joint(name, joint, amps, sd, se, known, misfit, refs_note, decays,
                          peaks[1] if peaks else None))
    return tuple(out)


def warm_candidates(
    refs: Sequence[ReferenceRun], sched: Schedule | None, curve: Curve, horizon: int
) -> list[Candidate]:
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
    for j in joint_fits(refs, sched is not None):
        law = LAWS[j.name]
        if j.name == "lr_annealing" and not j.known[-1]:
            cand = _unseen_anneal_candidate(j.fit, j.amps, j.sd, j.known, curve, sched, horizon)
            alpha = float(j.fit.theta[0])
            why = ("their lr decays do not pin its size down" if j.decays else
                   "none of them decays its lr")
            cand.prior_note = (f"{j.name} power law (alpha={alpha:.3g}) from {j.refs_note}; "
                               f"{why}, so the annealing drop is priced by the default prior")
            out.append(cand)
            continue
        # Transferred amplitudes keep their ±TRANSFER_SD prior, widened to the joint fit's
        # own standard error where that is larger (only the identified ones are kept).
        rows = np.eye(len(law.coef_names))[1:]
        known = j.known
        # The drop (last amplitude) of a run at this peak, from the top-peak references'.
        scale = np.ones(len(j.amps))
        scale[-1] = j.drop_scale(sched, horizon)
        prior = (Prior(rows[known], (j.amps * scale)[known],
                       (np.hypot(j.sd, j.se) * scale)[known]) if known.any() else None)
        shape = ", ".join(f"{n}={v:.3g}" for n, v in zip(j.fit.law.theta_names, j.fit.theta,
                                                            strict=True))
        note = f"{j.name} shape ({shape}) and amplitudes from {j.refs_note}"
        theta = j.fit.theta[:len(law.theta_names)]
        fixed = Start(theta[None, :], tuple(None for _ in law.theta_names))
        out.append(Candidate(law, fixed, prior, note, j.misfit))
    return out


def _unseen_anneal_candidate(joint: Fit, amps: np.ndarray, sd: np.ndarray, known: np.ndarray,
                             curve: Curve, sched: Schedule | None, horizon: int) -> Candidate:
    """Annealing law with the references' power-law part but the cold prior on the drop D."""
    alpha = float(joint.theta[0])
    design = design_for(sched, curve.steps, horizon, False)
    d0 = anneal_prior_mean(alpha, float(amps[0]), design, curve)
    rows = [np.array([0.0, 1.0, 0.0])] if known[0] else []
    mean, width, dof = ([amps[0]], [sd[0]], [np.inf]) if known[0] else ([], [], [])
    prior = Prior(np.array(rows + [np.array([0.0, 0.0, 1.0])]), np.array(mean + [d0]),
                  np.array(width + [ANNEAL_PRIOR_SD * d0]), np.array(dof + [ANNEAL_PRIOR_DOF]))
    # The memory lam is not identified either: the cold grid and its penalty, alpha fixed.
    grid = np.column_stack([np.full(len(LAMBDAS), alpha), np.array(LAMBDAS)])
    start = Start(grid, (None, None), starts("lr_annealing", curve.steps).penalty)
    return Candidate(LAWS["lr_annealing"], start, prior, None, HUBER_DELTA, cold_anneal=True)


def _decay_span(usable: Sequence[tuple[ReferenceRun, Curve]]) -> float:
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


def digest(refs: Sequence[ReferenceRun], *extra: object) -> bytes:
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


def canonical(refs: Sequence[ReferenceRun]) -> list[ReferenceRun]:
    """The references in the order of their data's digest: the same set in any order gives
    the same joint fits, replays and memo keys."""
    return sorted(refs, key=lambda r: digest([r]))


JOINTS: Memo[tuple[_Joint, ...]] = Memo(64)
