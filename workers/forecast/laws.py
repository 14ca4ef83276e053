"""Loss-curve laws as plain formulas, each written as ``basis(theta) @ coef``.

Every law is linear in its level parameters (``coef``: offsets and amplitudes) once its shape
parameters (``theta``: exponents, memory) are fixed. Fitting exploits this (variable
projection): only ``theta`` is searched, the coefficients are one weighted least-squares solve.

Inputs are in normalised units chosen by the caller: steps for the schedule-free laws; for the
schedule-aware laws the lr divided by its peak, so areas are in "peak-lr steps".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from workers.forecast.schedule import DropDesign


@dataclass(frozen=True)
class Design:
    """Covariates of a curve at some steps: what the law bases are evaluated on."""

    steps: np.ndarray
    s1: np.ndarray | None = None  # forward lr area (normalised lr)
    s2: dict[float, np.ndarray] | None = None  # annealing area per momentum lam
    drops: tuple[DropDesign, ...] = ()  # lr decreases per run (steps in run order)

    @cached_property
    def packed_drops(self) -> PackedDrops:
        """``drops`` of every run at once (see PackedDrops); made once per design."""
        return PackedDrops.of(self.drops)


@dataclass(frozen=True)
class PackedDrops:
    """The active (lr-decrease group, evaluation step) pairs of several runs' DropDesigns,
    flat, so that the multi-power drop of all runs is one vectorised pass. A joint fit has one
    DropDesign per reference, and a Python loop over them took ~40 % of each objective call of
    the multi-power law's joint fits (bench/RESULTS.md, session 13)."""

    eta: np.ndarray  # per group, the lr right after it (all runs' groups in order)
    group: np.ndarray  # per pair: its group
    area: np.ndarray  # per pair: the lr area from its group to its step
    weight: np.ndarray  # per pair: its group's lr decrease
    step: np.ndarray  # per pair: the evaluation step's index in the runs' steps, concatenated
    n_steps: int

    @staticmethod
    def of(drops: tuple[DropDesign, ...]) -> PackedDrops:
        parts: list[tuple[np.ndarray, ...]] = []
        groups = steps = 0
        for d in drops:
            k, j = np.nonzero(d.active)
            parts.append((d.eta, k + groups, d.area[k, j], d.weight[k], j + steps))
            groups, steps = groups + d.weight.size, steps + d.area.shape[1]
        if not parts:
            none, no_index = np.zeros(0), np.zeros(0, dtype=int)
            return PackedDrops(none, no_index, none, none, no_index, 0)
        eta, group, area, weight, step = (np.concatenate(c) for c in zip(*parts, strict=True))
        return PackedDrops(eta, group, area, weight, step, steps)

    def drop(self, C: float, beta: float, gamma: float) -> np.ndarray:
        """Luo et al. 2025 loss drop per unit B of every run, concatenated in run order:
        sum_k dlr_k G(lr_k^-gamma S_k(t)), G(x) = 1 - (C x + 1)^-beta."""
        x = self.area * np.power(self.eta, -gamma)[self.group]
        g = -np.expm1(-beta * np.log1p(C * x))
        return np.bincount(self.step, weights=self.weight * g, minlength=self.n_steps)


@dataclass(frozen=True)
class Law:
    name: str
    theta_names: tuple[str, ...]
    coef_names: tuple[str, ...]
    basis: Callable[[np.ndarray, Design], np.ndarray]
    needs_schedule: bool


def power_law(t: np.ndarray, E: float, A: float, a: float) -> np.ndarray:
    """L = E + A t^-a: the schedule-free default (Domhan et al. 2015's pow3)."""
    return E + A * np.power(t, -a)


def shifted_power_law(t: np.ndarray, E: float, A: float, a: float, t0: float) -> np.ndarray:
    """L = E + A (t + t0)^-a: Domhan's pow4; the shift absorbs an early transient."""
    return E + A * np.power(t + t0, -a)


def lr_annealing(s1: np.ndarray, s2: np.ndarray, L0: float, A: float, alpha: float,
                 C: float) -> np.ndarray:
    """Tissue et al. 2024: L = L0 + A S1^-alpha - C S2 (S2 = momentum annealing area)."""
    return L0 + A * np.power(s1, -alpha) - C * s2


def multi_power_drop(drops: DropDesign, C: float, beta: float, gamma: float) -> np.ndarray:
    """One run's multi-power loss drop per unit B (PackedDrops.drop)."""
    return PackedDrops.of((drops,)).drop(C, beta, gamma)


def multi_power(s1: np.ndarray, drops: DropDesign, L0: float, A: float, alpha: float, B: float,
                C: float, beta: float, gamma: float) -> np.ndarray:
    """Luo et al. 2025: L = L0 + A S1^-alpha - B * drop(C, beta, gamma)."""
    return L0 + A * np.power(s1, -alpha) - B * multi_power_drop(drops, C, beta, gamma)


def _power_basis(theta: np.ndarray, d: Design) -> np.ndarray:
    return np.column_stack([np.ones_like(d.steps), np.power(d.steps, -theta[0])])


def _shifted_basis(theta: np.ndarray, d: Design) -> np.ndarray:
    return np.column_stack([np.ones_like(d.steps), np.power(d.steps + theta[1], -theta[0])])


def _annealing_basis(theta: np.ndarray, d: Design) -> np.ndarray:
    # D = C / (1 - lam): the settled loss drop of annealing the whole peak lr, comparable
    # across lam (and the quantity a prior can be stated in).
    lam = float(theta[1])
    s2 = d.s2[round(lam, 6)]
    return np.column_stack([np.ones_like(d.s1), np.power(d.s1, -theta[0]), -(1.0 - lam) * s2])


def _multi_power_basis(theta: np.ndarray, d: Design) -> np.ndarray:
    alpha, log_c, beta, gamma = theta
    drop = d.packed_drops.drop(float(np.exp(log_c)), beta, gamma)
    return np.column_stack([np.ones_like(d.s1), np.power(d.s1, -alpha), -drop])


LAWS: dict[str, Law] = {
    "power_law": Law("power_law", ("a",), ("E", "A"), _power_basis, False),
    "shifted_power_law": Law(
        "shifted_power_law", ("a", "t0"), ("E", "A"), _shifted_basis, False
    ),
    "lr_annealing": Law("lr_annealing", ("alpha", "lam"), ("L0", "A", "D"), _annealing_basis, True),
    "multi_power": Law(
        "multi_power", ("alpha", "log_C", "beta", "gamma"), ("L0", "A", "B"), _multi_power_basis,
        True,
    ),
}
