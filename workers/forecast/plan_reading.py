"""The lr plan of a run that logs its lr but gives no ``lr_schedule``: read off the decay it has
begun.

Trainers log the lr (Hugging Face's ``learning_rate``, Lightning's ``lr-AdamW``) far more often
than users describe their schedule, and without a plan the forecast holds the lr at its last
value: a cosine or linear decay already under way is then left out of the forecast, which ends
too high. Those decays end at the run's ``total_steps`` in every common trainer, so once the
logged lr has fallen from its peak its curve names the family: each decay shape of
``schedule.DECAY_SHAPES`` (and inverse-sqrt) is fitted, from where the lr leaves its peak to
``total_steps``, with the final lr as its one free number, and the plan is taken only when a
shape follows every logged point closely. A schedule that is none of these (step drops, cycles,
a decay ending elsewhere) is left alone, and the lr is held as before.
"""

from __future__ import annotations

import numpy as np

from workers.forecast.schedule import DECAY_SHAPES, Schedule, decay_lr, schedule_from_spec

# The logged lr must have fallen this far below its peak before a decay is read into it: a
# smaller fall is also what a bucket mean across the peak or a float32 lr looks like.
MIN_FALL = 0.02
MIN_DECAY_POINTS = 4  # logged points past the peak that a shape is fitted to
# A shape is taken when no logged point of the decay is further from it than this share of
# the fall seen: logged lrs are exact, so the right shape fits to rounding, and the wrong ones
# miss by a quarter of the fall or more (a line through a cosine's quadratic start).
FIT_TOLERANCE = 0.05
PLATEAU = 1e-4  # lrs within this share of the peak are at the peak (float32 rounding)


def read_plan(lr_steps: np.ndarray, lr_values: np.ndarray, total_steps: int) -> Schedule | None:
    """The plan the logged lr has begun, to ``total_steps``; None if none is clear enough.

    The returned schedule's ``read_off_lr`` says what was read, for the forecast's reason.
    """
    order = np.argsort(lr_steps, kind="stable")
    xs = np.asarray(lr_steps, dtype=float)[order]
    ys = np.asarray(lr_values, dtype=float)[order]
    keep = np.isfinite(xs) & np.isfinite(ys) & (ys >= 0)
    xs, ys = xs[keep], ys[keep]
    if xs.size == 0 or xs[-1] >= total_steps:
        return None
    peak = float(ys.max())
    if peak <= 0 or ys[-1] > (1 - MIN_FALL) * peak:
        return None
    at_peak = np.flatnonzero(ys >= (1 - PLATEAU) * peak)
    # The decay starts where the lr leaves its peak: the end of warmup for cosine or linear,
    # the end of the stable phase for WSD. Both ends of the peak are tried.
    best: tuple[float, dict, str] | None = None
    for start in {float(xs[at_peak[0]]), float(xs[at_peak[-1]])}:
        after = xs > start
        if after.sum() < MIN_DECAY_POINTS:
            continue
        for miss, spec, what in _fits(xs[after], ys[after] / peak, start, peak, total_steps):
            if best is None or miss < best[0]:
                best = (miss, spec, what)
    fall = 1.0 - ys[-1] / peak
    if best is None or best[0] > FIT_TOLERANCE * fall:
        return None
    miss, spec, what = best
    plan = schedule_from_spec(spec)
    fit = "to rounding" if miss < 1e-4 else f"to within {miss:.1%} of its peak"
    plan.read_off_lr = f"the lr ahead is read off the logged lr as {what}, which fits it {fit}"
    plan.recipe = (read_plan, (xs, ys, total_steps))
    return plan


def _fits(steps: np.ndarray, frac: np.ndarray, start: float, peak: float, total: int
          ) -> list[tuple[float, dict, str]]:
    """(largest miss as a share of the peak, the plan's spec, in words) of each shape."""
    p = (steps - start) / (total - start)
    out = []
    for shape in DECAY_SHAPES:
        if shape == "exp":  # log frac = p log final: least squares through the origin
            final = float(np.exp(np.sum(p * np.log(np.maximum(frac, 1e-12))) / np.sum(p * p)))
        else:  # frac = final + (1 - final) g: least squares for final
            g = decay_lr(p, shape, 1.0, 0.0)
            final = float(np.sum((frac - g) * (1 - g)) / max(np.sum((1 - g) ** 2), 1e-300))
        final = min(max(final, 1e-6 if shape == "exp" else 0.0), 1.0 - MIN_FALL)
        spec = {"type": "wsd", "peak_lr": peak, "warmup_steps": 0, "decay_start": start,
                "decay_shape": shape, "final_lr": final * peak, "total_steps": int(total)}
        miss = float(np.max(np.abs(schedule_from_spec(spec).lr(steps) / peak - frac)))
        to = "0" if final < 5e-4 else f"{final:.3g}x its peak"
        out.append((miss, spec, f"{'an' if shape == 'exp' else 'a'} {shape} decay from its "
                    f"peak at step {start:,.0f} to {to} at step {total:,}"))
    if start > 0:  # inverse-sqrt: no free number once its start is known
        spec = {"type": "inverse_sqrt", "peak_lr": peak, "warmup_steps": start,
                "total_steps": int(total)}
        miss = float(np.max(np.abs(np.sqrt(start / steps) - frac)))
        out.append((miss, spec, f"an inverse-sqrt decay from its peak at step {start:,.0f}"))
    return out
