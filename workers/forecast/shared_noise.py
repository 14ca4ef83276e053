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
from scipy.stats import median_abs_deviation

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


def _hat_matrix() -> np.ndarray:
    """The local quadratic over one window as a linear map: row k gives the fitted value at
    point k of the window from its ``SMOOTH_POINTS`` values (Savitzky-Golay; a curve's first
    and last half-windows take the rows of its end windows, as scipy's savgol "interp")."""
    x = np.vander(np.arange(SMOOTH_POINTS, dtype=float), 3)
    return x @ np.linalg.inv(x.T @ x) @ x.T


HAT = _hat_matrix()


def wiggles(values: np.ndarray) -> np.ndarray | None:
    """Log values minus a local quadratic smooth of the others (leave-one-out residuals, the
    residual over one minus the point's own weight in its smooth); None when too short to
    smooth (or with a value no log is taken of). Left in, a point pulls its own smooth: at a
    curve's last point by 0.36 of its wiggle, which would understate the wiggle at the target
    step."""
    n, half = len(values), SMOOTH_POINTS // 2
    if n < SMOOTH_POINTS or not np.all(values > 0):
        return None
    logs = np.log(values)
    smooth = np.concatenate([HAT[:half] @ logs[:SMOOTH_POINTS],
                             np.convolve(logs, HAT[half][::-1], "valid"),
                             HAT[-half:] @ logs[-SMOOTH_POINTS:]])
    own = np.diag(HAT)
    weight = np.concatenate([own[:half], np.full(n - 2 * half, own[half]), own[-half:]])
    return (logs - smooth) / (1.0 - weight)


def shared_noise(steps: np.ndarray, values: np.ndarray, references: Sequence[ReferenceRun],
                 target: int) -> SharedNoise | None:
    """The shift of the value logged at ``target`` from the level, from the references that
    logged ``target`` at the steps this run logs and whose wiggles track this run's
    (``steps``/``values``: the run's points after warmup); None when none do."""
    own = wiggles(values)
    if own is None or not np.isfinite(own).all():
        return None
    tracking: list[tuple[np.ndarray, np.ndarray]] = []  # (steps, wiggles) of each
    for ref in references:
        ref_steps = np.asarray(ref.steps, float)
        ref_w = wiggles(np.asarray(ref.values, float))
        if ref_w is None or not np.isfinite(ref_w).all() or target not in ref_steps:
            continue
        common, mine, theirs = np.intersect1d(steps, ref_steps, return_indices=True)
        within = np.count_nonzero((steps >= ref_steps[0]) & (steps <= ref_steps[-1]))
        if len(common) < max(MIN_COMMON, SAME_STEPS * within):
            continue
        if np.corrcoef(ref_w[theirs], own[mine])[0, 1] >= MIN_CORRELATION:
            tracking.append((ref_steps, ref_w))
    if not tracking:
        return None
    common = steps
    for ref_steps, _ in tracking:
        common = np.intersect1d(common, ref_steps)
    if len(common) < MIN_COMMON:
        return None
    x = np.mean([w[np.searchsorted(t, common)] for t, w in tracking], axis=0)
    y = own[np.searchsorted(steps, common)]
    rho = float(np.corrcoef(x, y)[0, 1])
    if not rho >= MIN_CORRELATION:  # NaN too: references that do not wiggle
        return None
    beta = float(x @ y / (x @ x))
    # The scatter left, as a share of the run's own (robust spreads; as a ratio, the MAD's
    # scale to a normal sd cancels).
    left = float(median_abs_deviation(y - beta * x) / max(median_abs_deviation(y), 1e-12))
    at_target = float(np.mean([w[np.searchsorted(t, target)] for t, w in tracking]))
    return SharedNoise(beta * at_target, min(left, 1.0), rho, len(tracking))
