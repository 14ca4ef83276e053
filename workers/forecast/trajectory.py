"""A run's forecast: check the curve, choose laws, use finished runs as priors, give an interval.

Pipeline: status checks (too little data, diverged, not loss-like) -> bin the curve after warmup
-> candidate laws (schedule-aware when the lr is known, schedule-free otherwise) -> each law is
scored on a held-back tail of the observed curve and weighted by that score -> the final fits are
bootstrapped over residual blocks and widened by the extrapolation error the tail test measured.
With finished reference runs, the shape parameters of the schedule-aware laws come from a joint
fit to them and only the levels are refitted on the partial curve (transfer.py); then each
reference is replayed at this run's progress, and the forecast is corrected by how wrong the
replays were (calibration.py); replayed without priors too, they weigh an average with the run's
curve forecast alone, and the replays of that average calibrate it. Joint fits and replays
depend only on the references and are memoised.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import NamedTuple

import numpy as np
from scipy.stats import spearmanr

from workers.forecast.calibration import (
    MIN_RUNS,
    Calibration,
    calibration,
    few_run_calibration,
    final_value,
)
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
from workers.forecast.fit import (
    HUBER_DELTA,
    Fit,
    Prior,
    antithetic_normal,
    bootstrap,
    fit_law,
    holdout_weights,
)
from workers.forecast.guesses import starts
from workers.forecast.laws import LAWS, Design
from workers.forecast.memo import Codec, Memo
from workers.forecast.plan_reading import read_plan
from workers.forecast.schedule import Schedule, schedule_from_logged
from workers.forecast.shared_noise import shared_noise
from workers.forecast.transfer import (
    canonical,
    digest,
    joint_fits,
    joint_fits_made,
    nearest,
    warm_candidates,
)

__all__ = ["MAX_REFERENCES", "ReferenceRun", "TrajectoryForecast", "effective_schedule",
           "forecast_trajectory", "replay_ahead", "same_shape"]

FIT_BINS = 100
N_DRAWS = 200
CURVE_POINTS = 200
HOLDOUT = 0.3  # share of the observed span held back to score laws
DIVERGE_RATIO = 1.2  # loss 20% above its running minimum, or above its start: diverged
# The held-back tail test measures the error of an extrapolation one tail length ahead; the
# forecast reaches h tail lengths ahead, and its misspecification sd is taken as HORIZON_SCALE *
# tail error * h ** HORIZON_POWER. First fitted by the mean 90% interval score (Gneiting & Raftery
# 2007) on the Luo 25M+100M curves alone: flat along p in 0.4-0.5, k=0.7 (2.25% vs 4.0% for linear
# growth, p=1, k=1, which covered 98-100%). Re-scored (grid of k, p) on cold forecasts of three
# sources (Luo 25M+100M, tinylm train and val; Luo 400M and tinylm_long held out): errors of short
# runs of small models grow faster than a random walk's square root (a bias that builds up), and
# p=0.7 at the same k lowers the score on tinylm train 121 -> 103%, val 29.0 -> 25.9%, Luo 400M
# 5.45 -> 5.30%, keeps Luo 25M+100M (3.17 -> 3.18%), and costs tinylm_long (24.3 -> 26.2%, 16.7 ->
# 17.8%) for coverage 63 -> 67% and 78 -> 81%. The source-weighted optimum (k 1.2, p 0.7) over-
# covers Luo (98%), so k stays.
HORIZON_POWER = 0.7
HORIZON_SCALE = 0.7
# With finished runs as priors the replays measure the error at this horizon and widen the
# band where it was larger (calibration.py; never narrowed), so the a-priori growth there
# stays the random walk's square root: 0.7 there too over-covered Luo warm (100/89/100%) and
# cost early stopping 2-4 points of steps saved on every set, with no best run saved by it.
HORIZON_POWER_WITH_PRIORS = 0.5
# Calibration replays run at progress rounded down to 5% steps: one replay serves every batch
# of a run within the step (a slightly earlier cut only makes the replays a little harder).
CALIBRATION_STEP = 0.05
# A run entering a step whose replays are not made yet is forecast provisionally on those of
# the latest step at most this many before it (forecast_trajectory's provisional_ok). On the
# 15 tinylm_sched runs, 1 % into steps from 15 to 85 %, against the forecast made in full
# (2026-12-07, bench/RESULTS.md "Forecast speed"): 1, 2 and 4 steps back, the provisional mean
# a median 0.61 / 0.65 / 0.82 % from the full one, coverage 94 / 90 / 87 % (full 91-93 %).
# With no such step (a run's first forecast beside finished runs, a jump of more than
# LEAN_STEPS steps, a restarted server), the provisional forecast uses the finished runs but
# is not calibrated on their replays (see provisional_since for a bound). Cut at 10, 20,
# 30, 50, 70 and 90 %, memos empty (2026-12-07, RESULTS "Forecast speed"), those 15 runs and
# Luo's 27: median 101 / 82 ms against 1,082 / 922 ms in full; its mean a median 1.38 / 0.12 %
# from the full one; error 2.05 / 0.22 % against 1.22 / 0.18 %; coverage 99 / 91 % against
# 94 / 88 %. This run's curve alone would take 27 ms but be 6.89 / 0.39 % off.
LEAN_STEPS = 4
SHAPE_TOLERANCE = 0.1  # schedules alike: lr/peak within 0.1 at every 5% of the run
END_SPAN = 0.05  # a run at its target is valued against its last 5% of steps
MAX_REFERENCES = 8  # of the finished runs offered, the ones most like this run are used

Replayed = tuple[np.ndarray, float]  # a replayed forecast's final draws, how the run ended


@dataclass
class TrajectoryForecast:
    status: str  # "ready" | "insufficient_data" | "diverged" | "not_loss_like"
    reason: str
    target_step: int
    model: str | None = None
    params: dict[str, float] = field(default_factory=dict)
    level: float = 0.9
    final_mean: float | None = None
    # The band (and curve_lower/upper): where the metric will be logged, the level's draws
    # plus point scatter. At the target step itself, final_* also take in the batch noise
    # shared with finished runs when they show it (shared_noise), which the curve leaves out.
    final_lower: float | None = None
    final_upper: float | None = None
    final_samples: np.ndarray | None = None  # draws of the curve's level at the target
    # With finished runs as priors: the pool of the two ways (with priors, and this curve
    # alone) that a stop is decided on, weighed by the replays or, too few runs to replay,
    # even (``even_pool``); see _calibrated, _even_pool and decision_samples.
    pooled_samples: np.ndarray | None = None
    even_pool: bool = False
    # With an even pool whose band one or two replays widened: the level's draws before that
    # widening (checked_samples).
    unwidened_samples: np.ndarray | None = None
    curve_step: np.ndarray = field(default_factory=lambda: np.zeros(0))
    curve_mean: np.ndarray = field(default_factory=lambda: np.zeros(0))
    curve_lower: np.ndarray = field(default_factory=lambda: np.zeros(0))
    curve_upper: np.ndarray = field(default_factory=lambda: np.zeros(0))
    # Where no plan was given but an lr was logged: the lr the forecast took at curve_step
    # (read off the logged lr by plan_reading, or held at its last value), so a chart can
    # show what the forecast assumed.
    curve_lr: np.ndarray | None = None
    prior: str | None = None
    # An lr decay still ahead is priced, in some of the forecast's laws, by the default
    # annealing prior: a guess, which no finished run pins down (against a finished run,
    # stopping.decide stops on such a forecast only with the paired check).
    decay_guessed: bool = False
    # No plan given or read off a logged lr (plan_reading), so the forecast holds the lr at its
    # last value (or knows none): a cooldown it cannot see may still come, which is a guess
    # too. Against a finished run that annealed, such forecasts of WSD runs that would win
    # looked surely worse (tests/forecast/test_stopping.py).
    lr_held: bool = False
    # Calibrated as at an earlier 5% progress step (forecast_trajectory's provisional_ok).
    provisional: bool = False

    @property
    def trend_mean(self) -> float | None:
        """The curve's level at the target (its last point): final_mean, less the batch noise
        forecast for the target step itself (shared_noise). Runs are compared on levels."""
        return float(self.curve_mean[-1]) if self.curve_mean.size else None

    @property
    def lr_guessed(self) -> bool:
        """The lr ahead is a guess (decay_guessed or lr_held): a stop needs confirming."""
        return self.decay_guessed or self.lr_held

    @property
    def decision_samples(self) -> np.ndarray | None:
        """What a stop is decided on: the pool when there is one (it keeps both ways' answers
        where they disagree), else the final draws themselves."""
        return self.final_samples if self.pooled_samples is None else self.pooled_samples

    @property
    def checked_samples(self) -> np.ndarray | None:
        """The level's draws that a stop with an even pool is checked on (stopping.judge,
        with the paired check): before the few-run widening, since the paired check corrects
        them by the reference's own replay, the very error that widening measured. Counted
        twice, it cost the offline replays 7.5 points of steps saved on the tinylm lr sweeps
        (32.2 -> 24.7 %) and 3.3 on the simulated ones, with no best run saved by it."""
        return self.final_samples if self.unwidened_samples is None else self.unwidened_samples

    @property
    def decision_of(self) -> str:
        """Which draws decision_samples are: "pool" (both ways) or "level" (the final draws)."""
        return "level" if self.pooled_samples is None else "pool"


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
    """The schedule a run follows: its logged lr, with the plan for what is still ahead (the
    one given, else the decay the logged lr has begun, else none: the lr held)."""
    if lr_steps is not None and lr_values is not None and len(lr_steps) > 0:
        plan = schedule if schedule is not None else read_plan(
            np.asarray(lr_steps), np.asarray(lr_values), total_steps)
        return schedule_from_logged(np.asarray(lr_steps), np.asarray(lr_values), plan,
                                    total_steps)
    return schedule


def _cold_candidates(curve: Curve, design: Design, sched: Schedule | None) -> list[Candidate]:
    if sched is None:
        return [Candidate(LAWS[n], starts(n, curve.steps), None)
                for n in ("power_law", "shifted_power_law")]
    law = LAWS["lr_annealing"]
    start = starts("lr_annealing", curve.steps)
    # Without annealing (D pinned to 0): the forward power law, which sets the prior's scale.
    no_anneal = Prior(np.array([[0.0, 0.0, 1.0]]), np.zeros(1), np.array([1e-9]))
    base = fit_law(law, design, curve.values, curve.weights, start, curve.sigma, no_anneal, 1)
    d0 = anneal_prior_mean(float(base.theta[0]), float(base.coef[1]), design, curve)
    prior = Prior(np.array([[0.0, 0.0, 1.0]]), np.array([d0]), np.array([ANNEAL_PRIOR_SD * d0]),
                  ANNEAL_PRIOR_DOF)
    # Smoothed curves have almost no noise, so tiny misfits of the law would overrule the
    # prior; laws are not better than ~0.1% (the Huber scale), so that floors the noise.
    return [Candidate(law, start, prior, None, HUBER_DELTA)]


def _tail_error(cand: Candidate, curve: Curve, sched: Schedule | None, horizon: int) -> float:
    """Relative error at the end of a held-back tail, fitting only the head."""
    cut = curve.steps[0] + (1.0 - HOLDOUT) * (curve.steps[-1] - curve.steps[0])
    head = curve.steps <= cut
    if head.sum() < MIN_POINTS - 2 or (~head).sum() < 2:
        return np.nan
    drops = cand.law.name == "multi_power"
    d_head = design_for(sched, curve.steps[head], horizon, drops)
    d_tail = design_for(sched, curve.steps[~head], horizon, drops)
    f = fit_law(cand.law, d_head, curve.values[head], curve.weights[head], cand.start,
                max(curve.sigma, cand.sigma), cand.prior, 1)
    err = f.predict(d_tail) / curve.values[~head] - 1.0
    k = max(1, len(err) // 3)
    # The held-back points carry their own noise (sigma^2 / bin count, relative); it is not
    # extrapolation error and the bootstrap already prices it, so it is taken out of the mean
    # square. What the test cannot resolve (the noise of a k-point mean) floors the result.
    noise = float(np.mean(curve.sigma**2 / curve.weights[~head][-k:]))
    return float(np.sqrt(max(np.mean(err[-k:] ** 2) - noise, noise / k)))


def _end_residual(fits: dict[str, tuple[Fit, Candidate]], weights: dict[str, float],
                  sched: Schedule | None, horizon: int, steps: np.ndarray,
                  values: np.ndarray) -> tuple[float, float]:
    """(median, its standard error) of the log residuals of a run's last END_SPAN of steps
    around the fitted laws. A run at its target is valued by the fitted curve there, moved by
    this: a law that does not bend with the end of a curve (a cooldown it underfits, a shape
    transferred from references that this run does not share) would value it where it never
    was (8-14% off on some finished tinylm runs), and the median keeps the smoothing."""
    tail = steps >= steps[-1] - END_SPAN * (steps[-1] - steps[0])
    pred = sum(w * fits[name][0].predict(
        design_for(sched, steps[tail], horizon, name == "multi_power"))
        for name, w in weights.items())
    resid = np.log(values[tail] / np.maximum(pred, 1e-12))
    if resid.size < 3:
        return 0.0, 0.0
    med = float(np.median(resid))
    sd = 1.4826 * float(np.median(np.abs(resid - med)))
    return med, 1.2533 * sd / np.sqrt(resid.size)  # the median's se under normal noise


def _widen(sim: np.ndarray, err: float | None, curve: Curve, curve_step: np.ndarray,
           last: float, rng: np.random.Generator, power: float = HORIZON_POWER) -> np.ndarray:
    """Misspecification the bootstrap cannot see: the tail test's error, grown with horizon."""
    err = err if err is not None and np.isfinite(err) else 3.0 * curve.sigma
    tail_len = HOLDOUT * max(last - float(curve.steps[0]), 1.0)
    grow = (np.maximum(curve_step - last, 0.0) / tail_len) ** power
    return _lognormal_spread(sim, (HORIZON_SCALE * err * grow)[None, :], rng)


def _lognormal_spread(sim: np.ndarray, sd: float | np.ndarray,
                      rng: np.random.Generator) -> np.ndarray:
    """The draws spread by a log-normal of log-sd ``sd`` (a number, or one per curve step),
    mean-preserving, as the calibration's widening: a wider band must not move the forecast
    (exp of a zero-mean spread alone raised every mean by sd^2 / 2, up to 1 % here)."""
    return sim * np.exp(sd * antithetic_normal(len(sim), rng)[:, None] - sd**2 / 2)


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
    provisional_ok: bool = False,
    provisional_since: int | None = None,
) -> TrajectoryForecast:
    """Forecast the metric at ``total_steps`` with a ``level`` interval and a curve to it.

    ``calibrate``: with finished references, replay them at this run's progress and correct
    the forecast by how wrong it was on them (off for those replays themselves).
    ``provisional_ok``: where this process has not yet replayed the references at the run's
    5% progress step, forecast at once (``provisional``), in a fraction of the time the new
    step's replays take (most of a forecast's time when a run enters a step): with the
    references chosen and replayed as at the latest earlier step that has them (LEAN_STEPS at
    most before), or else not calibrated. Then replay_ahead makes the step's replays, one at
    a time, and a forecast follows that is not provisional (workers.tasks).
    ``provisional_since``: where the run's latest forecast is provisional too, the last step
    of the first provisional forecast since its last final one (its replays have run behind
    its batches since). Not calibrated, a forecast is then provisional only up to LEAN_STEPS
    progress steps past that one's step; further, it is made in full, so a run whose batches
    outrun its replays still gets a final forecast (and its stop decision) at least every
    LEAN_STEPS + 1 steps.
    """
    steps, values, sched, horizon = _framed(steps, values, total_steps, schedule, lr_steps,
                                            lr_values)
    target = int(total_steps)
    result = TrajectoryForecast("insufficient_data", "", target, level=level)
    warmup_end = float(sched.peak_step(horizon)) if sched is not None else 0.0
    if len(steps) == 0:
        return replace(result, reason=f"need at least {MIN_POINTS} points after warmup, have 0")
    bad = _status(steps, values, warmup_end)
    if bad is not None:
        return replace(result, status=bad[0], reason=bad[1])
    post = steps >= warmup_end
    curve = bin_curve(steps[post], values[post], FIT_BINS)
    last = float(steps[-1])
    # A run at (or past) its target still gets its law fitted: its final value is the fitted
    # curve at its last step, not the last logged point, whose batch noise (a few % for small
    # batches, and shared by runs that see the same batches) would move every comparison with it.
    end = max(target, int(last))

    # Chosen on the curve up to its last 5% progress step: the choice, and with it the
    # memoised joint fits, moves at most once a step.
    at = shown_at = _progress_step(last / end)
    chosen = _most_alike(references, steps, values, at * end)
    provisional = (provisional_ok and calibrate and bool(chosen) and last < target
                   and bool(_unmade(chosen, sched, horizon, at, seed)))
    lean = _leaned_on(references, steps, values, end, sched, horizon, at, seed) if (
        provisional) else None
    if lean is not None:
        at, chosen = lean, _most_alike(references, steps, values, lean * end)
    elif provisional_since is not None and (
            at - _progress_step(provisional_since / end) > LEAN_STEPS * CALIBRATION_STEP + 1e-9):
        provisional = False  # its replays too far behind (see provisional_since)
    references = chosen
    warm = warm_candidates(references, sched, curve, horizon) if references else []
    design = design_for(sched, curve.steps, horizon, any(c.law.name == "multi_power" for c in warm))
    cands = warm or _cold_candidates(curve, design, sched)
    n_curve = min(CURVE_POINTS, max(2, end - int(last) + 1))
    curve_step = np.unique(np.round(np.linspace(last, end, n_curve)))
    rng = np.random.default_rng(seed)
    power = HORIZON_POWER_WITH_PRIORS if warm else HORIZON_POWER
    sampled = _sample(cands, curve, design, sched, horizon, curve_step, rng, power)
    fell_back = sampled is None and bool(warm)
    if fell_back:  # every transferred law forecast a non-positive loss: this curve alone
        warm, power = [], HORIZON_POWER
        sampled = _sample(_cold_candidates(curve, design, sched), curve, design, sched,
                          horizon, curve_step, rng, power)
    if sampled is None:
        return replace(result, reason="every law fitted to this curve forecasts a non-positive "
                                      "value ahead: no loss-like forecast")
    sim, fits, errors, weights = sampled
    at_target = last >= target
    shift = 0.0
    if at_target:
        shift, se = _end_residual(fits, weights, sched, horizon, steps, values)
        sim = sim * np.exp(shift + se * antithetic_normal(len(sim), rng)[:, None])
    cal = note = pool = unwidened = None
    provisional = provisional and bool(warm)  # no transferred law: nothing to calibrate
    # Provisional with no step near enough to lean on: not calibrated until the replays
    # are made (see LEAN_STEPS).
    if calibrate and warm and not at_target and not (provisional and lean is None):
        sim, cal, note, pool, unwidened = _calibrated(
            sim, _alike(references, sched, horizon), curve, sched, horizon, curve_step,
            at, seed, rng)
    alpha = (1.0 - level) / 2.0
    # The band is where the metric will be logged; the draws stay the curve's level (see
    # _with_point_scatter). A run at its target is valued by its level alone.
    shown = sim if at_target else _with_point_scatter(sim, curve.sigma, rng)
    lo, hi = np.quantile(shown, [alpha, 1.0 - alpha], axis=0)
    mean = np.mean(sim, axis=0)
    final_mean, final_lower, final_upper = float(mean[-1]), float(lo[-1]), float(hi[-1])
    shared = None if at_target else shared_noise(steps[post], values[post], references, target)
    if shared is not None:  # (curve_step ends at the target)
        # At the target step the finished runs' own wiggle there is known: the value logged
        # there is the level moved by it, with what is left of the scatter. The curve stays
        # the level with the points' scatter, a line to the target, not to one step's batch.
        logged = _with_point_scatter(sim[:, -1:], curve.sigma * shared.scatter,
                                     rng)[:, 0] * np.exp(shared.shift)
        final_mean *= float(np.exp(shared.shift))
        final_lower, final_upper = (float(q) for q in np.quantile(logged, [alpha, 1.0 - alpha]))
    top = max(weights, key=weights.get)
    fit, cand = fits[top]
    model = top if len(weights) == 1 else "mix(" + ",".join(
        f"{k}:{v:.2f}" for k, v in sorted(weights.items(), key=lambda kv: -kv[1])) + ")"
    reason = _reason(fit, errors)
    if fell_back:
        reason += ("; the laws transferred from the finished runs forecast a non-positive loss "
                   "for this run, so it is forecast from its own curve alone")
    if at_target:
        reason = ("the run has reached its target step: its final value is the fitted curve "
                  f"there, moved by the median residual of its last {END_SPAN:.0%} of steps "
                  f"({np.expm1(shift):+.2%}); " + reason)
    read = sched is not None and bool(sched.read_off_lr)
    lr_held = schedule is None and not at_target and not read
    if schedule is None and not at_target and read:
        reason += f"; no lr_schedule: {sched.read_off_lr}"
    elif lr_held:  # no plan: the lr ahead is taken to stay put
        held = ("no lr schedule is known (none planned, no lr logged), so the forecast holds "
                "the lr as it is" if sched is None else
                "no lr_schedule gives the plan, so the lr is held at its last logged value")
        reason += f"; {held}: an lr decay before the target step would end lower than this interval"
    # The share of the forecast whose laws price the lr decay ahead by the default prior.
    guessed = 1.0 if not warm else sum(w for n, w in weights.items() if fits[n][1].cold_anneal)
    decay_guessed = False
    if sched is not None and guessed > 0:
        peak = sched.peak_lr(horizon)
        ahead = float(sched.lr(np.array([last]))[0] - sched.lr(np.array([float(target)]))[0])
        decay_guessed = ahead > 0.1 * peak
        if decay_guessed:
            reason += (f"; the lr decay still ahead is priced by the default annealing prior "
                       f"in {guessed:.0%} of this forecast, a guess (no finished run pins the "
                       "size of its drop down)")
    return replace(
        result, status="ready", reason=reason, model=model,
        params=_params(fit), final_mean=final_mean, final_lower=final_lower,
        final_upper=final_upper, final_samples=sim[:, -1].copy(), pooled_samples=pool,
        even_pool=pool is not None and cal is None, unwidened_samples=unwidened,
        curve_step=curve_step,
        curve_lr=sched.lr(curve_step) if schedule is None and sched is not None else None,
        curve_mean=mean, curve_lower=lo, curve_upper=hi,
        prior="; ".join(n for n in (cand.prior_note, note, cal and cal.note(),
                                    shared and shared.note(),
                                    provisional and _provisional_note(lean, shown_at))
                        if n) or None,
        decay_guessed=decay_guessed, provisional=provisional,
        lr_held=lr_held,
    )


def replay_ahead(
    steps: np.ndarray,
    values: np.ndarray,
    *,
    total_steps: int,
    schedule: Schedule | None = None,
    lr_steps: np.ndarray | None = None,
    lr_values: np.ndarray | None = None,
    references: Sequence[ReferenceRun] = (),
    seed: int = 0,
) -> bool:
    """Make one of the replays that a forecast of these points (forecast_trajectory, the
    same arguments) lacks at their progress step (_unmade), or first the joint fits of its
    references; whether none is left. One at a time (0.05-0.4 s each), so that a job can
    look for a run's new batches between them and show those first (workers.tasks)."""
    steps, values, sched, horizon = _framed(steps, values, total_steps, schedule, lr_steps,
                                            lr_values)
    if not len(steps) or not references or steps[-1] >= total_steps:
        return True
    end = max(int(total_steps), int(steps[-1]))
    at = _progress_step(steps[-1] / end)
    chosen, scheduled = _most_alike(references, steps, values, at * end), sched is not None
    unmade = _unmade(chosen, sched, horizon, at, seed)
    if not unmade:
        return True
    # First the joint fits of the step's references (its own forecast's; each replay
    # makes its own), when this process lacks them.
    if not joint_fits_made(chosen, scheduled):
        joint_fits(chosen, scheduled)
        return False
    unmade[0]()
    return len(unmade) == 1


def _framed(steps: np.ndarray, values: np.ndarray, total_steps: int,
            schedule: Schedule | None, lr_steps: np.ndarray | None,
            lr_values: np.ndarray | None
            ) -> tuple[np.ndarray, np.ndarray, Schedule | None, int]:
    """The points in step order, the schedule in effect and the horizon it runs to."""
    steps = np.asarray(steps, dtype=float)
    values = np.asarray(values, dtype=float)
    order = np.argsort(steps, kind="stable")
    steps, values = steps[order], values[order]
    sched = effective_schedule(schedule, lr_steps, lr_values, int(total_steps))
    horizon = max(int(total_steps), sched.total_steps if sched else 0,
                  int(steps[-1]) if len(steps) else 0)
    return steps, values, sched, horizon


def _with_point_scatter(sim: np.ndarray, sigma: float,
                        rng: np.random.Generator) -> np.ndarray:
    """The draws of the curve's level with the scatter of one logged point around it (the
    curve's own relative noise, ``Curve.sigma``), mean-preserving.

    A logged value carries its batch's noise, which no law forecasts: a band for the level
    alone covered the last logged train loss of the tinylm runs at the 75% cut 47% of the
    time warm (17% cold), with the scatter 64% (22%): 1.4% point scatter against a band of
    about that width (bench/RESULTS.md, 2026-12-06). Stops and the calibration replays
    compare levels (a finished run is valued by its fitted end, not its last point), so
    they keep the level's draws (``final_samples``)."""
    return _lognormal_spread(sim, sigma, rng)


# Draws, and the kept laws' fits, held-back tail errors and weights, by law name.
Sampled = tuple[np.ndarray, dict[str, tuple[Fit, Candidate]], dict[str, float], dict[str, float]]


def _sample(cands: list[Candidate], curve: Curve, design: Design, sched: Schedule | None,
            horizon: int, curve_step: np.ndarray, rng: np.random.Generator,
            power: float = HORIZON_POWER) -> Sampled | None:
    """Predictive draws at ``curve_step`` (N_DRAWS x steps) from the candidate laws, each
    scored on the held-back tail and drawn in proportion to its weight; with the fits, the
    tail errors and the weights of the laws kept.

    A loss is positive: a law whose fitted curve falls to zero or below ahead (a degenerate
    fit, e.g. a floor at 0 and a drop that outgrows the loss) is no forecast and is left out,
    and so are the draws of a kept law that do. None when no law is left."""
    # A law is scored on the held-back tail of this curve and, when transferred, also on how
    # well it fits the finished runs (which show the cooldowns this curve has not reached).
    errors = {c.law.name: float(np.hypot(_tail_error(c, curve, sched, horizon), c.sigma))
              for c in cands}
    weights = holdout_weights(errors) or {cands[0].law.name: 1.0}
    last = float(curve_step[0])
    draws, fits = [], {}
    for c in cands:
        if c.law.name not in weights:
            continue
        n = max(1, int(round(weights[c.law.name] * N_DRAWS)))
        drops = c.law.name == "multi_power"
        d_fit = design if (drops or not design.drops) else replace(design, drops=())
        fit = fit_law(c.law, d_fit, curve.values, curve.weights, c.start,
                      max(curve.sigma, c.sigma), c.prior)
        pred = design_for(sched, curve_step, horizon, drops)
        if not np.all(fit.predict(pred) > 0):
            continue
        sim = bootstrap(fit, d_fit, curve.values, pred, n, rng)
        sim = sim[np.all(sim > 0, axis=1)]
        if not len(sim):
            continue
        fits[c.law.name] = (fit, c)
        draws.append(_widen(sim, errors.get(c.law.name), curve, curve_step, last, rng, power))
    if not fits:
        return None
    total = sum(weights[name] for name in fits)
    return np.vstack(draws), fits, errors, {name: weights[name] / total for name in fits}


class _Calibrated(NamedTuple):
    """A forecast with priors as _calibrated corrects it."""

    draws: np.ndarray
    cal: Calibration | None  # the calibration applied; None: too few replays, an even pool
    note: str | None  # on the average of the two ways, or on the one or two replays
    pool: np.ndarray | None  # the final draws to decide a stop on
    unwidened: np.ndarray | None = None  # TrajectoryForecast.unwidened_samples


def _calibrated(sim: np.ndarray, alike: Sequence[ReferenceRun], curve: Curve,
                sched: Schedule | None, horizon: int, curve_step: np.ndarray, progress: float,
                seed: int, rng: np.random.Generator) -> _Calibrated:
    """A forecast with priors (``sim``), corrected by its replays on the ``alike`` finished
    runs: averaged with this curve's forecast alone by how each way erred on them, and that
    average calibrated on the replays of the same average.

    The final draws to decide a stop on are the pool (mixture) of the two ways, each
    calibrated on its own replays as they measured it. The average is the better forecast
    (its band is as wide as it was wrong on the replays; the pool's is wider), but where the
    two ways disagree it is one answer between them, and on a near-tie a calibrated band
    alone stops the better run about one time in ten at a 0.9 threshold; a stop cannot be
    undone, so it waits until both ways' draws say so (bench/RESULTS.md, 2026-12-06)."""
    with_priors = _replays(alike, progress, seed, priors=True)
    log_lr = _log_peak_ratios(alike, sched, horizon)
    cal = _calibration_of(with_priors, log_lr)
    last, end = float(curve_step[0]), float(curve_step[-1])
    grow = np.clip((curve_step - last) / max(end - last, 1.0), 0.0, 1.0) ** HORIZON_POWER
    if cal is None:
        pool = _even_pool(sim, curve, sched, horizon, curve_step, rng)
        few = few_run_calibration(*_done(with_priors)[:2])
        if few is None:
            return _Calibrated(sim, None, None, pool)
        return _Calibrated(few.apply(sim, grow, rng), None, few.note(), pool, sim[:, -1].copy())
    # The references' shapes help where the runs are alike and mislead where they are not
    # (other lrs of a sweep early in a run); the replays are the only evidence of which.
    alone_replays = _replays(alike, progress, seed, priors=False)
    own = _calibration_of(alone_replays, log_lr)
    alone = of_average = None
    if own is not None:
        alone = _alone(curve, sched, horizon, curve_step, rng)
    if own is not None and alone is not None:
        share = own.spread**-2 / (own.spread**-2 + cal.spread**-2)
        of_average = _calibration_of(_averaged_replays(with_priors, alone_replays, share, rng),
                                     log_lr)
    if of_average is None:  # no average to make: the forecast with priors, calibrated
        return _Calibrated(cal.apply(sim, grow, rng), cal, None, None)
    # Each way as its replays measured it: the pool is wider than either way erred already,
    # and its stops are the ones measured with zero regret before the average was shown.
    at_end = np.ones(1)
    pool = _mixture(cal.apply(sim[:, -1:], at_end, rng, one_more_run=False),
                    own.apply(alone[0][:, -1:], at_end, rng, one_more_run=False), share,
                    rng)[:, 0]
    note = (f"averaged (in log) with this run's curve forecast alone at {share:.0%}: "
            f"replayed, it erred {own.spread * 100:.2g}% (rms) against "
            f"{cal.spread * 100:.2g}% with the priors")
    return _Calibrated(of_average.apply(_average(sim, alone[0], share, rng), grow, rng),
                       of_average, note, pool)


def _even_pool(sim: np.ndarray, curve: Curve, sched: Schedule | None, horizon: int,
               curve_step: np.ndarray, rng: np.random.Generator) -> np.ndarray | None:
    """The final draws to decide a stop on when too few finished runs can be replayed to
    weigh the two ways: an even pool of the forecast with priors and of this curve's forecast
    alone, neither calibrated. Laws transferred from one or two runs of another schedule
    shape can be confidently wrong (from one cosine run, a WSD run's cooldown drop is barely
    identified: 2.80 [2.71, 2.82] for a run that ended at 2.722), and no replay shows it; so a
    stop waits until both ways' draws say so, unless a reference of this run's schedule shape
    checks the forecast instead (stopping.decide). None when this curve alone gives no
    forecast."""
    alone = _alone(curve, sched, horizon, curve_step, rng)
    if alone is None:
        return None
    return _mixture(sim[:, -1:], alone[0][:, -1:], 0.5, rng)[:, 0]


def _alone(curve: Curve, sched: Schedule | None, horizon: int, curve_step: np.ndarray,
           rng: np.random.Generator) -> Sampled | None:
    """This curve's forecast without priors (the cold laws, as _sample returns it): the
    second of the two ways a warm forecast is weighed or pooled with."""
    d_own = design_for(sched, curve.steps, horizon, False)
    return _sample(_cold_candidates(curve, d_own, sched), curve, d_own, sched, horizon,
                   curve_step, rng)


def _mixture(a: np.ndarray, b: np.ndarray, share_b: float,
             rng: np.random.Generator) -> np.ndarray:
    """A mixture of two sets of draws: ``share_b`` of the rows from ``b``."""
    n = min(len(a), len(b))
    k = int(round(share_b * n))
    return np.vstack([a[rng.permutation(len(a))[:n - k]], b[rng.permutation(len(b))[:k]]])


def _average(a: np.ndarray, b: np.ndarray, share_b: float,
             rng: np.random.Generator) -> np.ndarray:
    """Draw by draw, the weighted geometric mean of two sets of draws (curves or finals),
    paired at random.

    Not a mixture of the two: a mixture (linear pool) of two calibrated forecasts is wider
    than either is wrong (Gneiting & Ranjan 2013); on the Luo dev curves the mixture's 90%
    bands covered 96/89/100% at the 25/50/75% cuts with errors 0.57-0.82 of their implied sd,
    where the forecast with priors alone gave 0.75-1.15 of it. The average is one forecast,
    which the replays of the same average then calibrate."""
    n = min(len(a), len(b))
    a, b = a[rng.permutation(len(a))[:n]], b[rng.permutation(len(b))[:n]]
    return np.exp((1.0 - share_b) * np.log(a) + share_b * np.log(b))


def _averaged_replays(a: Sequence[Replayed | None], b: Sequence[Replayed | None],
                      share_b: float, rng: np.random.Generator) -> list[Replayed | None]:
    """The replays of the same runs made both ways, averaged as _average does."""
    return [None if x is None or y is None else (_average(x[0], y[0], share_b, rng), x[1])
            for x, y in zip(a, b, strict=True)]


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


def _progress_step(progress: float) -> float:
    """``progress`` rounded down to a whole CALIBRATION_STEP."""
    return float(np.floor(progress / CALIBRATION_STEP + 1e-9) * CALIBRATION_STEP)


def _most_alike(refs: Sequence[ReferenceRun], steps: np.ndarray, values: np.ndarray,
                upto: float) -> list[ReferenceRun]:
    """Of ``refs``, the MAX_REFERENCES most like the run's curve up to step ``upto``, in an
    order of their own (transfer.canonical): one set, one forecast, whatever order they were
    offered or ranked in, and the same set ranked anew is a memo hit."""
    if len(refs) > MAX_REFERENCES:
        seen = steps <= upto
        seen = seen if seen.sum() >= MIN_POINTS else np.ones(len(steps), bool)
        refs = nearest(refs, steps[seen], values[seen], MAX_REFERENCES)
    return canonical(refs)


def _encode(replayed: Replayed | None) -> bytes:
    """A replay as bytes for a shared memo store: how the run ended, then the final draws."""
    if replayed is None:
        return b""
    draws, actual = replayed
    return struct.pack("<d", actual) + np.asarray(draws, "<f8").tobytes()


def _decode(data: bytes) -> Replayed | None:
    if not data:
        return None
    return np.frombuffer(data, "<f8", offset=8).astype(float), struct.unpack("<d", data[:8])[0]


# Replays one by one: with the others as priors (by the whole set, which one, progress and
# seed), and alone (by that run only: when a run finishes, only it is replayed alone, not the
# whole group again). One by one, so that replay_ahead can make a step's replays a few at a
# time between a run's forecasts.
_REPLAYS: Memo[Replayed | None] = Memo(2048, Codec("replay", _encode, _decode))
_ALONE: Memo[Replayed | None] = Memo(1024, Codec("replay-alone", _encode, _decode))


def _replays(refs: Sequence[ReferenceRun], progress: float, seed: int, *, priors: bool,
             keys: Sequence[bytes] | None = None) -> tuple[Replayed | None, ...]:
    """Each reference cut at ``progress`` (in CALIBRATION_STEPs) of its planned steps and
    forecast with the others as its references (leave one out), or with none (``priors``
    False); None where it gave no forecast. ``keys``: their _replay_keys, where known."""
    at = _progress_step(progress)
    keys = _replay_keys(refs, at, seed, priors) if keys is None else keys
    return tuple(_replay_one(refs, i, key, at, seed, priors) for i, key in enumerate(keys))


def _replay_one(refs: Sequence[ReferenceRun], i: int, key: bytes, at: float, seed: int,
                priors: bool) -> Replayed | None:
    """Reference ``i``'s replay (memo ``key``), made where it is not memoised."""
    others = [*refs[:i], *refs[i + 1:]] if priors else ()
    return (_REPLAYS if priors else _ALONE).get(
        key, partial(_forecast_cut, refs[i], others, at, seed))


def _replay_keys(refs: Sequence[ReferenceRun], at: float, seed: int,
                 priors: bool) -> list[bytes]:
    """The memo keys of the references' replays at progress step ``at``, in their order."""
    at = round(at, 6)
    if not priors:
        return [digest([r], at, seed) for r in refs]
    whole = digest(refs)
    return [digest((), whole, i, at, seed) for i in range(len(refs))]


def _unmade(chosen: Sequence[ReferenceRun], sched: Schedule | None, horizon: int, at: float,
            seed: int) -> list[Callable[[], object]]:
    """The replays a forecast at progress step ``at`` with the references ``chosen``
    (_most_alike) makes and this process has neither memoised nor found shared, each a call
    that makes it: with the others as priors and, where those give a calibration (or may:
    not all made yet), alone (_calibrated)."""
    alike = _alike(chosen, sched, horizon)
    out: list[Callable[[], object]] = []
    for priors in (True, False):
        keys = _replay_keys(alike, at, seed, priors)
        absent = set((_REPLAYS if priors else _ALONE).absent(keys))
        unmade = [partial(_replay_one, alike, i, key, at, seed, priors)
                  for i, key in enumerate(keys) if key in absent]
        if priors and not unmade and _calibration_of(
                _replays(alike, at, seed, priors=True, keys=keys),
                _log_peak_ratios(alike, sched, horizon)) is None:
            break  # no calibration: the forecast replays nothing alone
        out += unmade
    return out


def _leaned_on(refs: Sequence[ReferenceRun], steps: np.ndarray, values: np.ndarray,
               end: float, sched: Schedule | None, horizon: int, at: float,
               seed: int) -> float | None:
    """For a forecast at progress step ``at`` that lacks some of its replays: the latest
    step up to LEAN_STEPS before it whose replays are all at hand (_unmade); else None."""
    for k in range(1, LEAN_STEPS + 1):
        before = _progress_step(at - k * CALIBRATION_STEP)
        if before <= 0:
            break
        if not _unmade(_most_alike(refs, steps, values, before * end), sched, horizon,
                       before, seed):
            return before
    return None


def _provisional_note(lean: float | None, shown_at: float) -> str:
    """What a provisional forecast at ``shown_at`` stands on: the step ``lean`` or nothing."""
    if lean is None:
        return (f"provisional: the finished runs' replays that calibrate it are not made yet "
                f"(none within {LEAN_STEPS * CALIBRATION_STEP:.0%} before {shown_at:.0%} of "
                "this run); the calibrated forecast follows")
    return (f"provisional: the finished runs chosen and replayed as at {lean:.0%} of this run, "
            f"the forecast made with them at {shown_at:.0%} follows")


def _done(replays: Sequence[Replayed | None]) -> tuple[list[np.ndarray], list[float], list[int]]:
    """The replays that gave a forecast: their final draws, how their runs ended, and which."""
    done = [i for i, r in enumerate(replays) if r is not None]
    return [replays[i][0] for i in done], [replays[i][1] for i in done], done


def _calibration_of(replays: Sequence[Replayed | None],
                    log_lr: Sequence[float] | None = None) -> Calibration | None:
    """calibration() of the replays that gave a forecast (``log_lr``: see calibration)."""
    predicted, actual, done = _done(replays)
    return calibration(predicted, actual, None if log_lr is None else [log_lr[i] for i in done])


def _log_peak_ratios(refs: Sequence[ReferenceRun], sched: Schedule | None,
                     horizon: int) -> list[float] | None:
    """Each reference's log(peak lr / this run's), or None without schedules to compare."""
    if sched is None or any(r.schedule is None for r in refs):
        return None
    peak = sched.peak_lr(horizon)
    if not peak > 0:
        return None
    ratios = [r.schedule.peak_lr(max(r.total_steps, 1)) / peak for r in refs]
    return [float(np.log(q)) if q > 0 else float("nan") for q in ratios]


def _forecast_cut(r: ReferenceRun, others: Sequence[ReferenceRun], progress: float,
                  seed: int) -> tuple[np.ndarray, float] | None:
    steps, values = np.asarray(r.steps, float), np.asarray(r.values, float)
    cut = steps <= progress * r.total_steps
    if not cut.any() or not np.isfinite(values).all():
        return None
    fc = forecast_trajectory(steps[cut], values[cut], total_steps=r.total_steps,
                             schedule=r.schedule, references=others, seed=seed,
                             calibrate=False)
    if fc.status != "ready" or fc.final_samples is None:
        return None
    return fc.final_samples, final_value(steps, values)


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
