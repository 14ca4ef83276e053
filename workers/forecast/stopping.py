"""Early stopping: P(this run ends worse than a reference) from the forecast's draws, and the
same probability judged against the reference as it looked at this run's progress."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

from workers.forecast.schedule import Schedule
from workers.forecast.trajectory import (
    MAX_REFERENCES,
    ReferenceRun,
    TrajectoryForecast,
    effective_schedule,
    forecast_trajectory,
    same_shape,
)
from workers.forecast.transfer import nearest

# How much better than forecast a run may end when the lr ahead is a guess
# (TrajectoryForecast.lr_guessed): the largest error measured on a decay priced by the default
# prior, cold WSD runs of bench/data/tinylm_sched at 25 % of their steps, 13 % too high
# (bench/RESULTS.md). A held lr leaves out a cooldown of the same size there (median error
# 14.7 % held, 13.1 % priced by the prior, 2026-12-08), so it gets the same margin. Against a
# target value nothing else checks the guess.
GUESSED_DROP_ERROR = 0.13


def p_underperform(final_samples: np.ndarray, reference: float, mode: str = "min",
                   reference_sd: float = 0.0) -> float:
    """P(this run's final value ends worse than ``reference``), over the forecast's draws.

    ``mode`` "min": lower is better (a loss); "max": higher is better (an accuracy).
    ``reference_sd``: the reference is itself an estimate (a finished run's fitted final
    value) with this normal sd; two runs that end within it are not told apart with
    confidence, so near-ties do not stop a run. 0: the reference is exact (a target).
    """
    if mode not in ("min", "max"):
        raise ValueError(f"mode: must be 'min' or 'max', got {mode!r}")
    draws = np.asarray(final_samples, dtype=float)
    draws = draws[np.isfinite(draws)]
    if draws.size == 0 or not np.isfinite(reference):
        return float("nan")
    sign = 1.0 if mode == "min" else -1.0
    if reference_sd > 0:
        return float(np.mean(norm.cdf(sign * (draws - reference) / reference_sd)))
    return float(np.mean(sign * (draws - reference) > 0))


def paired_p_underperform(
    steps: np.ndarray, values: np.ndarray, *, total_steps: int, schedule: Schedule | None,
    reference: ReferenceRun, reference_value: float, others: Sequence[ReferenceRun],
    mode: str = "min", reference_sd: float = 0.0,
    lr_steps: np.ndarray | None = None, lr_values: np.ndarray | None = None,
) -> float:
    """P(this run ends worse than the finished ``reference`` run), judged like with like.

    A forecaster's error on a curve is largely shared by the curves of the same kind (same
    data, same schedule shape, a nearby lr): on short runs of small models every law with a
    floor forecasts too high, by 10-20 % at a quarter of the run, so a run that will end
    level with the best one looks surely worse. The finished reference, cut at this run's
    progress and forecast the same way (both with ``others`` as their references, never with
    the reference itself), shows that shared error; this run's draws are scaled by how far
    that forecast was from ``reference_value``, how the reference did end. NaN where the two
    schedules differ in shape (their errors are not shared) or a forecast is not ready.
    """
    steps = np.asarray(steps, dtype=float)
    last = float(np.max(steps))
    sched = effective_schedule(schedule, lr_steps, lr_values, total_steps)
    horizon = max(total_steps, sched.total_steps if sched else 0)
    if not same_shape(reference, sched, horizon):
        return float("nan")
    progress = last / max(total_steps, last)
    cut = np.asarray(reference.steps, dtype=float) <= progress * reference.total_steps
    others = nearest(others, steps, np.asarray(values, dtype=float), MAX_REFERENCES)  # one set
    mine = forecast_trajectory(steps, values, total_steps=total_steps, schedule=schedule,
                               lr_steps=lr_steps, lr_values=lr_values, references=others)
    then = forecast_trajectory(np.asarray(reference.steps)[cut],
                               np.asarray(reference.values)[cut],
                               total_steps=reference.total_steps, schedule=reference.schedule,
                               references=others)
    if mine.status != "ready" or then.status != "ready" or then.final_samples is None:
        return float("nan")
    shift = reference_value / float(np.mean(_checked(then)))
    return p_underperform(_checked(mine) * shift, reference_value, mode, reference_sd)


def _checked(fc: TrajectoryForecast) -> np.ndarray:
    """The draws the paired check compares: those a stop is decided on, but for an even pool
    the forecast's own (checked_samples), since the check stands in for that pool (decide)."""
    return fc.checked_samples if fc.even_pool else fc.decision_samples


def should_stop(p: float, threshold: float, progress: float, min_progress: float) -> bool:
    """Stop only when confident (p >= threshold) and far enough in to trust the forecast."""
    return bool(np.isfinite(p) and progress >= min_progress and p >= threshold)


@dataclass(frozen=True)
class Decision:
    p: float  # what was decided on: the forecast's probability, capped by the paired one
    p_forecast: float  # of the draws decided on (on_level: the forecast's own)
    p_paired: float  # NaN when not consulted, or when the runs cannot be paired
    stop: bool
    # An even pool set aside: decided on the forecast's own draws with the paired check.
    on_level: bool = False


def judge(fc: TrajectoryForecast, reference: float, mode: str, reference_sd: float,
          threshold: float, progress: float, min_progress: float,
          paired: Callable[[], float] | None = None) -> Decision:
    """The stop decision on a ready forecast against ``reference`` (decide, with the
    probabilities of the draws the forecast offers for it)."""
    p = p_underperform(fc.decision_samples, reference, mode, reference_sd)
    p_level = (p_underperform(fc.checked_samples, reference, mode, reference_sd)
               if fc.even_pool else None)
    p_margin = None
    if paired is None and fc.lr_guessed:
        better = 1.0 - GUESSED_DROP_ERROR if mode == "min" else 1.0 + GUESSED_DROP_ERROR
        p_margin = p_underperform(fc.decision_samples * better, reference, mode, reference_sd)
    return decide(p, threshold, progress, min_progress, paired, fc.lr_guessed, p_level,
                  p_margin)


def decide(p_forecast: float, threshold: float, progress: float, min_progress: float,
           paired: Callable[[], float] | None = None, lr_guessed: bool = False,
           p_level: float | None = None, p_margin: float | None = None) -> Decision:
    """The stop decision. When the reference is a run, a stop the forecast asks for must also
    hold in the paired comparison (``paired``: paired_p_underperform for that run), so a
    forecaster wrong the same way on both runs cannot stop the one that would have won; it
    costs two forecasts, so it is consulted only then.

    ``lr_guessed``: the lr ahead is a guess (TrajectoryForecast.lr_guessed): the forecast
    prices an lr decay still ahead by the default prior (no finished run pins its size down),
    or, with no plan given or read off the logged lr, holds the lr where a cooldown may still
    come. Against a reference run, such a forecast stops a run only when the paired
    comparison confirms it: the first guess is the forecaster's largest known error (cold WSD
    runs before their cooldown, 7-13 % too high on tinylm_sched), and alone it stopped the
    best run of a replayed sweep (a 40 % cooldown judged at 25 % against a 10 % one,
    bench/RESULTS.md, 2026-12-06); the second stopped the best run of 55 of 147 replayed
    sweeps whose runs logged their lr and gave no plan (43 with the plan read off the lr
    where it can be; bench/RESULTS.md, 2026-12-08). A target value has no run to pair with:
    there the stop must also hold on ``p_margin``, p with the run ending GUESSED_DROP_ERROR
    better than forecast (judge computes it). p stays the forecast's: the run is still
    predicted to miss the target (missed_target).

    ``p_level``: with an even pool (TrajectoryForecast.even_pool: too few finished runs to
    replay, ``p_forecast`` is of the pool), p on the forecast's own draws. The pool stands in
    for the check the replays would make; a reference run of this run's schedule shape makes
    that check itself (the paired comparison), so against one the stop is decided on the
    forecast's own draws and that check, as with enough runs replayed."""
    p, p_paired, on_level = p_forecast, float("nan"), False
    asked = [p_forecast] if p_level is None else [p_forecast, p_level]
    if paired is not None and any(should_stop(q, threshold, progress, min_progress)
                                  for q in asked):
        p_paired = paired()
        if np.isfinite(p_paired):
            on_level = p_level is not None
            p = min(p_level if on_level else p, p_paired)
    # A guessed lr is confirmed by the paired check against a run, by the margin against a
    # target value.
    if paired is not None:
        confirmed = bool(np.isfinite(p_paired))
    else:
        confirmed = p_margin is None or should_stop(p_margin, threshold, progress, min_progress)
    return Decision(p, p_level if on_level else p_forecast, p_paired,
                    should_stop(p, threshold, progress, min_progress)
                    and (confirmed or not lr_guessed), on_level)
