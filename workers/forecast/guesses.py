"""Data-driven starting grids and bounds for each law's shape parameters.

Only the shape parameters (theta) need guesses: level parameters are solved linearly. A grid of
starts covers the plausible range; bounds keep exponents physical (a loss curve decays, an
exponent of 5 or a negative timescale means the fit is chasing noise).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

# Momentum of the annealing area per step. Tissue et al. report 0.999 working across their
# runs; the grid lets a curve with an observed decay pick a different memory.
LAMBDAS = (0.99, 0.995, 0.998, 0.999, 0.9995)
DEFAULT_LAMBDA = 0.999


@dataclass(frozen=True)
class Start:
    """Starting grid (rows of theta) and per-dimension bounds (None: discrete, grid only).

    ``penalty(theta)`` is a negative log prior on the shape, added to the fit objective.
    """

    grid: np.ndarray
    bounds: tuple[tuple[float, float] | None, ...]
    penalty: Callable[[np.ndarray], float] | None = None


def _memory_penalty(theta: np.ndarray) -> float:
    """Log-normal prior on the annealing memory 1/(1-lam) around the published default:
    a cooldown seen only in part cannot tell a long memory from a small drop."""
    return float(np.log((1.0 - theta[1]) / (1.0 - DEFAULT_LAMBDA)) ** 2)


def _alphas(n: int) -> np.ndarray:
    return np.geomspace(0.08, 1.6, n)


def starts(law: str, steps: np.ndarray, decay_span: float = 0.0) -> Start:
    """Starting points for ``law`` fitted to a curve observed at ``steps``.

    ``decay_span`` is the number of steps over which the observed lr decreased (multi-power
    law timescale guess).
    """
    if law == "power_law":
        return Start(_alphas(14)[:, None], ((0.01, 3.0),))
    if law == "shifted_power_law":
        first = float(max(np.min(steps), 1.0))
        t0 = np.array([0.0, 0.5, 2.0]) * first
        grid = np.array(list(itertools.product(_alphas(8), t0)))
        return Start(grid, ((0.01, 3.0), (0.0, 10.0 * first + 1.0)))
    if law == "lr_annealing":
        grid = np.array(list(itertools.product(_alphas(12), LAMBDAS)))
        return Start(grid, ((0.02, 2.5), None), _memory_penalty)
    if law == "multi_power":
        span = max(decay_span, 100.0)
        log_c = -np.log(span) + np.array([-2.0, 0.0, 2.0])
        grid = np.array(list(itertools.product(_alphas(4), log_c, (0.4, 1.0), (0.3, 0.7))))
        return Start(
            grid, ((0.02, 2.5), (-np.log(span) - 8.0, -np.log(span) + 6.0), (0.05, 3.0), (0.0, 1.5))
        )
    raise ValueError(f"law: unknown law {law!r}")
