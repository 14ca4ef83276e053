"""Calibration on finished runs: how wrong the forecaster was on them at the same progress.

A law fitted to one partial curve cannot see its own misspecification far ahead (short runs of
small models keep a steady log-log slope that every law with a floor flattens). A project's
finished runs can: each is cut at this run's progress, forecast the way this run is, and
compared with how it really ended. Their log errors give a bias (in an lr sweep, along the
peak lr: see calibration), removed only in the part the runs agree on (shrunk by its standard
error), and their errors in units of their own interval's width say by how much the intervals
were too narrow (never narrowed: too few runs to trust a tightening): split conformal
prediction, with the group's finished runs as the calibration set.
Both are measured on a handful of runs, so a band for one more run is widened as a normal
prediction interval from that many errors is (Student t, plus the estimate's own error).
With one or two replays (few_run_calibration) no bias is removed and the band is only widened.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import t as student_t

from workers.forecast.fit import antithetic_normal

MIN_RUNS = 3  # fewer replayed runs say nothing about a bias or a spread
TRUTH_SPAN = 0.02  # a finished run ended at the mean of its last 2% of steps (batch noise)
Z90 = 1.6449  # normal quantile of a central 90% interval
# A bias along the peak lr (calibration) needs this many replays and this spread of their lrs
# (a ratio), and is not extrapolated beyond them.
LR_LINE_RUNS = 5
LR_LINE_SPAN = 1.5


@dataclass(frozen=True)
class Calibration:
    """Log errors log(forecast / actual) of the replayed runs, and what they imply."""

    errors: tuple[float, ...]
    bias: float  # the shared part of the errors, removed from the forecast
    ratio: float  # the replays' rms error around the bias, in units of their own band's sd
    spread: float  # the replays' rms error around the bias
    # few_run_calibration: pseudo-replays pooled with the errors (bias 0, no cap on the sd)
    prior_runs: int = 0
    by_lr: bool = False  # the bias is a line in log peak lr, taken at this run's (calibration)

    def widening(self, one_more_run: bool = True) -> tuple[float, float]:
        """(scale >= 1, cap): by how much a band is widened and the sd it is widened to at
        most; for one more run (the forecast shown), as a prediction interval from this many
        replays would be, else as the replays measured (a pool of two ways: see
        trajectory._calibrated)."""
        k = len(self.errors)
        if not one_more_run:
            f = 1.0
        elif self.prior_runs:  # errors taken around zero: nothing spent on a bias
            f = float(student_t.ppf(0.95, k + self.prior_runs) / Z90)
        else:
            f = predictive_factor(k, 2 if self.by_lr else 1)
        return max(self.ratio * f, 1.0), self.spread * f

    @property
    def scale(self) -> float:
        return self.widening()[0]

    @property
    def cap(self) -> float:
        return self.widening()[1]

    def note(self) -> str:
        if self.prior_runs:
            return (f"too few finished runs to calibrate on: {len(self.errors)} replayed at "
                    "this progress, off by " + ", ".join(f"{e * 100:+.2g}%" for e in self.errors)
                    + f"; no bias removed, interval widened x{self.scale:.2g} by their errors "
                    "pooled with the band's own width")
        where = " (a line in their peak lr, at this run's)" if self.by_lr else ""
        return (f"calibrated on {len(self.errors)} finished runs replayed at this progress: "
                f"their forecasts were off by {np.mean(self.errors) * 100:+.2g}% on average "
                f"(sd {np.std(self.errors) * 100:.2g}%); bias removed "
                f"{self.bias * 100:+.2g}%{where}, "
                f"interval widened up to x{self.scale:.2g}, to at most "
                f"+-{Z90 * self.cap * 100:.2g}%")

    def apply(self, sim: np.ndarray, grow: np.ndarray, rng: np.random.Generator,
              one_more_run: bool = True) -> np.ndarray:
        """Shift the draws by the bias and widen them by the scale, but not beyond the cap
        (a band already wider stays as it is); ``grow`` (0 at the last observation, 1 at the
        target) phases both in along the curve; ``one_more_run``: see widening."""
        scale, cap = self.widening(one_more_run)
        own = _log_sd(sim[:, -1])
        target = min(own * scale, max(own, cap))
        extra = grow[None, :] * np.sqrt(max(target**2 - own**2, 0.0))
        z = antithetic_normal(len(sim), rng)[:, None]
        # Mean-preserving log-normal widening: only the bias moves the forecast.
        return sim * np.exp(extra * z - extra**2 / 2 - grow[None, :] * self.bias)


def predictive_factor(k: int, fitted: int = 1) -> float:
    """How much wider than k errors' rms a 90% band for one more error must be: a normal
    prediction interval with the sd estimated from those k (Student t with k - ``fitted``
    degrees of freedom, ``fitted`` the parameters their centre took: 1 for a mean, 2 for a
    line; times sqrt(1 + 1/k)); 1.22 for 8 runs, 2.05 for 3. Warm forecasts needed it
    once they became one average of two ways instead of a mixture of them (whose over-
    dispersion had hidden it): on the Luo dev curves the average's 90% bands covered
    96/85/81% at the 25/50/75% cuts with the replays' spread alone, 96/89/89% with this."""
    return float(student_t.ppf(0.95, k - fitted) / Z90 * np.sqrt(1.0 + 1.0 / k))


def _log_sd(draws: np.ndarray) -> float:
    """The sd a normal would need for the draws' central 90% in log space."""
    lo, hi = np.quantile(np.log(draws), [0.05, 0.95])
    return float(hi - lo) / (2 * Z90)


def final_value(steps: np.ndarray, values: np.ndarray, share: float = TRUTH_SPAN) -> float:
    """How a finished run ended: the mean of its last ``share`` of steps."""
    span = share * max(float(steps[-1] - steps[0]), 1.0)
    return float(np.mean(values[steps >= steps[-1] - span]))


def _errors(predicted: list[np.ndarray],
            actual: list[float]) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """The usable replays' log errors, their own bands' sds, and which replays they are."""
    usable = [i for i, (p, a) in enumerate(zip(predicted, actual, strict=True))
              if np.isfinite(a) and a > 0 and p.size and np.all(p > 0)]
    return (np.array([np.log(np.mean(predicted[i]) / actual[i]) for i in usable]),
            np.array([max(_log_sd(predicted[i]), 1e-6) for i in usable]), usable)


def few_run_calibration(predicted: list[np.ndarray],
                        actual: list[float]) -> Calibration | None:
    """From 1 to MIN_RUNS - 1 usable replays, too few to tell a bias from noise: only a
    widening. Their errors in units of their own band's sd are pooled with one pseudo-replay
    that erred exactly its band's sd (the band taken at its word, as one run's worth: a
    scaled inverse chi-square prior on the ratio centred on 1), and the band for one more run
    is widened as a Student t with that many degrees of freedom; no cap (a spread from one or
    two errors says nothing of the size of the next). On the lr sweeps of bench.stop_calibration
    (1 / 2 finished runs) the bands covered Luo 79 / 72 % -> 92 / 89 % and tinylm 53 / 46 % ->
    82 / 76 % (bench/RESULTS.md, 2026-12-06)."""
    err, own, _ = _errors(predicted, actual)
    if not 0 < len(err) < MIN_RUNS:
        return None
    ratio = float(np.sqrt((1.0 + np.sum((err / own) ** 2)) / (len(err) + 1)))
    return Calibration(tuple(float(e) for e in err), 0.0, ratio, float("inf"), prior_runs=1)


def calibration(predicted: list[np.ndarray], actual: list[float],
                log_lr: list[float] | None = None) -> Calibration | None:
    """From the replayed forecasts' final draws and the true final values; None with fewer
    than MIN_RUNS usable replays.

    ``log_lr``: per replay, log(its peak lr / this run's). In an lr sweep the forecaster's
    error depends on the lr (the laws' floors bend differently), so a mean over runs at other
    lrs is the wrong bias for this one: from at least LR_LINE_RUNS replays spanning
    LR_LINE_SPAN in peak lr, the bias is a line through their errors taken at this run's lr
    (clipped to their range). Offline, the forecast with priors before calibration, log error
    rms at 25 % of the run: tinylm 8.35 %, less the replays' mean 8.62 %, less the line 4.35 %;
    tinylm_long 3.99 / 3.89 / 1.71 %; tinylm_sched 2.79 / 1.92 / 1.95 % (bench/RESULTS.md,
    session 19)."""
    err, own, usable = _errors(predicted, actual)
    if len(err) < MIN_RUNS:
        return None
    k = len(err)
    x = None if log_lr is None else np.asarray(log_lr, float)[usable]
    by_lr = bool(x is not None and k >= LR_LINE_RUNS and np.all(np.isfinite(x))
                 and float(np.ptp(x)) >= np.log(LR_LINE_SPAN))
    if by_lr:
        design = np.column_stack([np.ones(k), x])
        coef, *_ = np.linalg.lstsq(design, err, rcond=None)
        at = np.array([1.0, float(np.clip(0.0, x.min(), x.max()))])
        resid = err - design @ coef
        cov = float(np.sum(resid**2)) / (k - 2) * np.linalg.inv(design.T @ design)
        centre, se2, line = float(at @ coef), float(at @ cov @ at), design @ coef
    else:
        centre, se2 = float(np.mean(err)), float(np.var(err, ddof=1)) / k
        line = np.full(k, centre)
    # Positive-part James-Stein shrinkage: a centre within its own noise is mostly not removed.
    keep = max(0.0, 1.0 - se2 / centre**2) if centre else 0.0
    bias = keep * centre
    ratio = float(np.sqrt(np.mean(((err - keep * line) / own) ** 2)))
    spread = float(np.sqrt(np.mean((err - keep * line) ** 2) + keep * se2))
    return Calibration(tuple(float(e) for e in err), bias, ratio, spread, by_lr=by_lr)
