"""Batch noise a run shares with finished runs that saw the same batches.

Runs of a sweep with one data order (one seed, the default of most trainers) log the loss of
the same batches at the same steps, so the wiggles of their curves around a smooth line match
from run to run (the tinylm sweeps here: correlation 0.74-1.00 run to run). No law forecasts a
wiggle, but the finished runs have logged theirs at the target step: where this run's wiggles
have tracked theirs, the value it will log there is its level moved by theirs, with only the
scatter the tracking left. Nothing is assumed: runs whose wiggles do not track get no shift.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.signal import savgol_filter

from workers.forecast.curve import ReferenceRun

SMOOTH_POINTS = 21  # the smooth line a wiggle is measured from: a local quadratic this wide
MIN_COMMON = 30  # points logged at the same steps by the run and every tracking reference
MIN_CORRELATION = 0.5  # a reference tracks, and the references' mean wiggle tracks, at least this
# Of the run's points within a reference's steps, the share it logged at the same steps: runs
# that log alike pair point for point; series read as bucket means of other widths would pair
# only where two bucket centres happen to coincide, which is no pairing.
SAME_STEPS = 0.9


@dataclass(frozen=True)
class SharedNoise:
    """How the value logged at the target step sits off the curve's level."""

    shift: float  # log of logged value over level, as the tracking references predict it
    scatter: float  # the point scatter left once the shared part is taken out, as its share
    correlation: float  # of this run's wiggles with the references' mean wiggle
    n_runs: int  # references that track

    def note(self) -> str:
        return (f"the value logged at the target step is forecast {np.expm1(self.shift):+.2%} "
                f"off the curve's level: {self.n_runs} finished run(s) logged the same batches "
                f"there (their wiggles track this run's, correlation {self.correlation:.2f})")


def _leverage(n: int) -> np.ndarray:
    """How much each point of a window pulls the local quadratic's value at itself: the hat
    matrix diagonal of a quadratic fit to ``SMOOTH_POINTS`` points, for each of ``n`` points
    (the first and last half-windows are fitted by the end windows, as savgol's "interp")."""
    x = np.vander(np.arange(SMOOTH_POINTS, dtype=float), 3)
    hat = np.einsum("ij,jk,ik->i", x, np.linalg.inv(x.T @ x), x)
    half = SMOOTH_POINTS // 2
    return np.concatenate([hat[:half], np.full(n - 2 * half, hat[half]), hat[-half:]])


def wiggles(values: np.ndarray) -> np.ndarray | None:
    """Log values minus a local quadratic smooth of the others (leave-one-out residuals);
    None when too short to smooth. Left in, a point pulls its own smooth: at a curve's last
    point by 0.36 of its wiggle, which would understate the wiggle at the target step."""
    if len(values) < SMOOTH_POINTS:
        return None
    logs = np.log(values)
    smooth = savgol_filter(logs, SMOOTH_POINTS, 2, mode="interp")
    return (logs - smooth) / (1.0 - _leverage(len(logs)))


def _robust_sd(x: np.ndarray) -> float:
    return 1.4826 * float(np.median(np.abs(x - np.median(x))))


def _within(steps: np.ndarray, ref_steps: np.ndarray) -> int:
    """How many of the run's points fall within the reference's logged steps."""
    return int(np.count_nonzero((steps >= ref_steps[0]) & (steps <= ref_steps[-1])))


def shared_noise(steps: np.ndarray, values: np.ndarray, references: Sequence[ReferenceRun],
                 target: int) -> SharedNoise | None:
    """The shift of the value logged at ``target`` from the level, from the references that
    logged ``target`` at the steps this run logs and whose wiggles track this run's
    (``steps``/``values``: the run's points after warmup); None when none do."""
    own = wiggles(values)
    if own is None or not np.isfinite(own).all():
        return None
    at = {int(s): i for i, s in enumerate(steps) if float(s).is_integer()}
    tracking = []
    for ref in references:
        ref_w = wiggles(np.asarray(ref.values, float))
        if ref_w is None or not np.isfinite(ref_w).all():
            continue
        by_step = {int(s): w for s, w in zip(ref.steps, ref_w, strict=True)
                   if float(s).is_integer()}
        if target not in by_step:
            continue
        common = sorted(set(at) & set(by_step))
        if len(common) < max(MIN_COMMON, SAME_STEPS * _within(steps, ref.steps)):
            continue
        x = np.array([by_step[s] for s in common])
        y = own[[at[s] for s in common]]
        if np.corrcoef(x, y)[0, 1] >= MIN_CORRELATION:
            tracking.append(by_step)
    if not tracking:
        return None
    common = sorted(set(at).intersection(*tracking))
    if len(common) < MIN_COMMON:
        return None
    x = np.array([[t[s] for s in common] for t in tracking]).mean(axis=0)
    y = own[[at[s] for s in common]]
    rho = float(np.corrcoef(x, y)[0, 1])
    if rho < MIN_CORRELATION:
        return None
    beta = float(x @ y / (x @ x))
    left = _robust_sd(y - beta * x) / max(_robust_sd(y), 1e-12)
    at_target = float(np.mean([t[target] for t in tracking]))
    return SharedNoise(beta * at_target, min(left, 1.0), rho, len(tracking))
