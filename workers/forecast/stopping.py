"""Early stopping: P(this run ends worse than a reference) from the forecast's draws."""

from __future__ import annotations

import numpy as np
from scipy.stats import norm


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


def should_stop(p: float, threshold: float, progress: float, min_progress: float) -> bool:
    """Stop only when confident (p >= threshold) and far enough in to trust the forecast."""
    return bool(np.isfinite(p) and progress >= min_progress and p >= threshold)
