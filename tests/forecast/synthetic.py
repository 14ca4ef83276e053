"""Seeded synthetic loss curves drawn from the laws themselves (known ground truth)."""

from __future__ import annotations

import numpy as np

from workers.forecast.laws import lr_annealing
from workers.forecast.schedule import Schedule, schedule_from_spec

TRUE = {"L0": 2.0, "A": 3.0, "alpha": 0.4, "lam": 0.999, "D": 0.12}


def wsd(total: int, decay_start: int, warmup: int = 200) -> Schedule:
    return schedule_from_spec({"type": "wsd", "peak_lr": 1e-3, "warmup_steps": warmup,
                               "total_steps": total, "decay_start": decay_start,
                               "final_lr": 0.0, "decay_shape": "linear"})


def annealing_curve(sched: Schedule, steps: np.ndarray, p: dict = TRUE) -> np.ndarray:
    """Tissue et al. law on peak-normalised areas, as the forecaster parametrises it."""
    peak = 1e-3
    s1 = sched.forward_area(steps, sched.total_steps) / peak
    s2 = sched.annealing_area(steps, p["lam"], sched.total_steps) / peak
    return lr_annealing(s1, s2, p["L0"], p["A"], p["alpha"], p["D"] * (1 - p["lam"]))


def noisy(values: np.ndarray, rel_sd: float, rng: np.random.Generator) -> np.ndarray:
    return values * np.exp(rel_sd * rng.standard_normal(values.shape))
