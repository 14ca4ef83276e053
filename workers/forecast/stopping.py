"""Early stopping: P(this run ends worse than a reference) from the forecast's draws."""

from __future__ import annotations

import numpy as np


def p_underperform(final_samples: np.ndarray, reference: float, mode: str = "min") -> float:
    """Share of predictive draws of the final value that end worse than ``reference``.

    ``mode`` "min": lower is better (a loss); "max": higher is better (an accuracy).
    """
    if mode not in ("min", "max"):
        raise ValueError(f"mode: must be 'min' or 'max', got {mode!r}")
    draws = np.asarray(final_samples, dtype=float)
    draws = draws[np.isfinite(draws)]
    if draws.size == 0 or not np.isfinite(reference):
        return float("nan")
    worse = draws > reference if mode == "min" else draws < reference
    return float(np.mean(worse))


def should_stop(p: float, threshold: float, progress: float, min_progress: float) -> bool:
    """Stop only when confident (p >= threshold) and far enough in to trust the forecast."""
    return bool(np.isfinite(p) and progress >= min_progress and p >= threshold)
