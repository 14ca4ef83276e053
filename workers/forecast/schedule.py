"""Learning-rate schedules and the LR areas the schedule-aware laws are written in.

Every schedule is evaluated on the integer step grid up to its horizon, because the areas are
sums over steps (S1 = sum of lr, the annealing momentum of Tissue et al. is a per-step filter).
Runs longer than ``MAX_GRID`` steps are evaluated on a strided grid with the sums rescaled.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy.signal import lfilter

MAX_GRID = 400_000
NAMED = ("cosine", "linear", "constant", "wsd", "inverse_sqrt")
DECAY_SHAPES = ("linear", "sqrt", "cosine", "exp")


@dataclass(frozen=True)
class DropDesign:
    """The LR decreases of a schedule, grouped, as the multi-power law consumes them.

    ``weight[g]`` is the total lr decrease in group g, ``eta[g]`` the lr right after it,
    ``area[g, j]`` the lr area from the group to evaluation step j (0 before the group).
    """

    weight: np.ndarray
    eta: np.ndarray
    area: np.ndarray
    active: np.ndarray


@dataclass
class Schedule:
    """A planned learning-rate schedule: ``lr(step)`` plus cached per-step areas."""

    fn: Callable[[np.ndarray], np.ndarray]
    total_steps: int
    description: str = ""
    _grid: dict = field(default_factory=dict, repr=False, compare=False)
    # (factory, its arguments): how to make it again. ``fn`` is a closure, which pickle cannot
    # carry to the embedded server's fitting process (workers.offload); its recipe it can.
    recipe: tuple = field(default=(), repr=False, compare=False)
    # Where the plan ahead was read off a logged lr (plan_reading), what it was read as.
    read_off_lr: str = field(default="", compare=False)

    def __reduce__(self) -> tuple:
        if not self.recipe:
            raise TypeError("only a Schedule made by this module's factories can be pickled")
        return self.recipe

    def lr(self, steps: np.ndarray) -> np.ndarray:
        return np.asarray(self.fn(np.asarray(steps, dtype=float)), dtype=float)

    def _per_step(self, horizon: int) -> tuple[np.ndarray, np.ndarray, int]:
        """(grid steps, lr on grid, stride) covering 0..horizon."""
        horizon = int(max(horizon, self.total_steps, 1))
        key = ("grid", horizon)
        if key not in self._grid:
            stride = max(1, -(-horizon // MAX_GRID))
            grid = np.arange(0, horizon + stride, stride, dtype=float)
            self._grid[key] = (grid, np.clip(self.lr(grid), 0.0, None), stride)
        return self._grid[key]

    def peak_step(self, horizon: int = 0) -> int:
        """First step where the lr reaches its maximum: the end of warmup."""
        grid, eta, _ = self._per_step(horizon)
        return int(grid[int(np.argmax(eta))])

    def peak_lr(self, horizon: int) -> float:
        """The largest lr up to ``horizon`` (the laws measure lr areas in it)."""
        return float(np.max(self.lr(np.linspace(0, horizon, 2049))))

    def forward_area(self, steps: np.ndarray, horizon: int = 0) -> np.ndarray:
        """S1(t) = sum_{i=1..t} lr_i (warmup included), the 'intrinsic time' of training."""
        grid, eta, stride = self._per_step(max(horizon, int(np.max(steps, initial=0))))
        s1 = np.concatenate([[0.0], np.cumsum(eta[1:]) * stride])
        return np.interp(steps, grid, s1)

    def annealing_area(self, steps: np.ndarray, lam: float, horizon: int = 0) -> np.ndarray:
        """S2(t) of Tissue et al. 2024: sum of m_i, m_i = lam*m_{i-1} + (lr_{i-1} - lr_i).

        Only decreases after the warmup peak count (warmup is not annealing). ``lam`` is the
        per-step momentum; on a strided grid it is raised to the stride.
        """
        grid, eta, stride = self._per_step(max(horizon, int(np.max(steps, initial=0))))
        key = ("s2", len(grid), round(lam, 8))
        if key not in self._grid:
            drop = np.concatenate([[0.0], eta[:-1] - eta[1:]])
            drop[: int(np.argmax(eta)) + 1] = 0.0
            m = lfilter([1.0], [1.0, -(lam**stride)], drop)
            self._grid[key] = np.cumsum(m) * stride
        return np.interp(steps, grid, self._grid[key])

    def drop_design(
        self, steps: np.ndarray, scale: float = 1.0, max_groups: int = 32
    ) -> DropDesign:
        """Group the lr decreases before ``max(steps)`` for the multi-power law (vectorised).

        ``scale`` multiplies the lr (callers pass 1/peak so the law works in peak units).
        """
        steps = np.asarray(steps, dtype=float)
        grid, eta, stride = self._per_step(int(np.max(steps, initial=0)))
        drop = np.concatenate([[0.0], eta[:-1] - eta[1:]])
        drop[: int(np.argmax(eta)) + 1] = 0.0
        drop[grid > np.max(steps, initial=0)] = 0.0
        idx = np.flatnonzero(drop > 0)
        s1 = np.concatenate([[0.0], np.cumsum(eta[1:]) * stride])
        if idx.size == 0:
            empty = np.zeros((0, steps.size))
            return DropDesign(np.zeros(0), np.zeros(0), empty, empty.astype(bool))
        # Equal-mass groups of consecutive decreases; a sudden drop stays its own group.
        mass = np.cumsum(drop[idx])
        group = np.minimum((mass / mass[-1] * max_groups).astype(int), max_groups - 1)
        group = np.unique(group, return_inverse=True)[1]
        weight = np.bincount(group, weights=drop[idx])
        at = np.bincount(group, weights=drop[idx] * idx) / weight
        k = np.clip(np.round(at).astype(int), 0, len(grid) - 1)
        start = s1[k] - eta[k] * stride  # area counted from step k inclusive
        area = np.interp(steps, grid, s1)[None, :] - start[:, None]
        active = steps[None, :] >= grid[k][:, None]
        return DropDesign(weight * scale, np.maximum(eta[k] * scale, 1e-12),
                          np.where(active, area * scale, 0.0), active)


def _warmup(steps: np.ndarray, peak: float, warmup: int) -> np.ndarray:
    return peak * np.minimum(1.0, steps / warmup) if warmup > 0 else np.full_like(steps, peak)


def decay_lr(p: np.ndarray, shape: str, peak: float, final: float) -> np.ndarray:
    """lr at decay progress p in [0, 1] from ``peak`` to ``final``."""
    p = np.clip(p, 0.0, 1.0)
    if shape == "linear":
        frac = 1.0 - p
    elif shape == "sqrt":
        frac = 1.0 - np.sqrt(p)
    elif shape == "cosine":
        frac = 0.5 * (1.0 + np.cos(np.pi * p))
    else:  # exp: geometric interpolation, needs final > 0
        return peak * (max(final, 1e-12) / peak) ** p
    return final + (peak - final) * frac


def _number(spec: dict, name: str, default: float | None = None, positive: bool = False) -> float:
    value = spec.get(name, default)
    if value is None:
        raise ValueError(f"{name}: required for schedule type {spec.get('type')!r}")
    # jsonb gives a large number back as an int of hundreds of digits (1e308 is stored as
    # numeric): float() it before any numpy check, which cannot cast such an int.
    number = math.nan
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            number = float(value)
        except OverflowError:  # an int beyond any double
            pass
    if not math.isfinite(number):
        raise ValueError(f"{name}: must be a finite number, got {value!r}")
    if number < 0 or (positive and number == 0):
        raise ValueError(f"{name}: must be {'positive' if positive else 'non-negative'}")
    return number


def _from_knots(spec: dict) -> Schedule:
    knots = spec["knots"]
    try:
        arr = np.asarray(knots, dtype=float)
    except (TypeError, ValueError):
        raise ValueError("knots: must be a list of [step, lr] pairs") from None
    if arr.ndim != 2 or arr.shape[1] != 2 or len(arr) < 1 or not np.isfinite(arr).all():
        raise ValueError("knots: must be a non-empty list of finite [step, lr] pairs")
    if np.any(np.diff(arr[:, 0]) < 0) or np.any(arr < 0):
        raise ValueError("knots: steps must be non-decreasing and values non-negative")
    xs, ys = arr[:, 0], arr[:, 1]

    def fn(steps: np.ndarray) -> np.ndarray:
        # Piecewise linear; a repeated step is a jump (the later value holds from that step).
        j = np.clip(np.searchsorted(xs, steps, side="right"), 1, len(xs)) - 1
        nxt = np.minimum(j + 1, len(xs) - 1)
        span = xs[nxt] - xs[j]
        frac = np.where(span > 0, (steps - xs[j]) / np.where(span > 0, span, 1.0), 0.0)
        return ys[j] + np.clip(frac, 0.0, 1.0) * (ys[nxt] - ys[j])

    total = int(spec.get("total_steps") or xs[-1])
    return Schedule(fn, total, "knots", recipe=(schedule_from_spec, (dict(spec),)))


def schedule_from_spec(spec: dict) -> Schedule:
    """Build a Schedule from an API SCHEDULE dict; raise ValueError naming the bad field."""
    if not isinstance(spec, dict):
        raise ValueError("lr_schedule: must be an object")
    if "knots" in spec:
        return _from_knots(spec)
    kind = spec.get("type")
    if kind not in NAMED:
        raise ValueError(f"type: must be one of {', '.join(NAMED)} (or give knots)")
    peak = _number(spec, "peak_lr", positive=True)
    warmup = int(_number(spec, "warmup_steps", 0.0))
    total = int(_number(spec, "total_steps", positive=True))
    final = _number(spec, "final_lr", 0.0)
    if warmup >= total and kind != "constant":
        raise ValueError("warmup_steps: must be smaller than total_steps")
    if final > peak:
        raise ValueError("final_lr: must not exceed peak_lr")
    if kind == "wsd":
        start = _number(spec, "decay_start", 0.8 * total)
        if not warmup <= start <= total:
            raise ValueError("decay_start: must lie between warmup_steps and total_steps")
        shape = spec.get("decay_shape", "linear")
        if shape not in DECAY_SHAPES:
            raise ValueError(f"decay_shape: must be one of {', '.join(DECAY_SHAPES)}")
    else:
        start, shape = float(warmup), {"cosine": "cosine", "linear": "linear"}.get(kind, "")

    def fn(steps: np.ndarray) -> np.ndarray:
        up = _warmup(steps, peak, warmup)
        if kind == "constant":
            return up
        if kind == "inverse_sqrt":
            return np.where(steps <= warmup, up, peak * np.sqrt(max(warmup, 1) / np.maximum(
                steps, 1.0)))
        p = (steps - start) / max(total - start, 1.0)
        return np.where(steps <= start, up, decay_lr(p, shape, peak, final))

    return Schedule(fn, total, str(kind), recipe=(schedule_from_spec, (dict(spec),)))


def schedule_from_logged(
    lr_steps: np.ndarray, lr_values: np.ndarray, plan: Schedule | None, total_steps: int
) -> Schedule:
    """The logged lr up to its last step, then the plan (or the last lr held) beyond it."""
    order = np.argsort(lr_steps, kind="stable")
    xs = np.asarray(lr_steps, dtype=float)[order]
    ys = np.asarray(lr_values, dtype=float)[order]
    keep = np.isfinite(xs) & np.isfinite(ys)
    xs, ys = xs[keep], np.clip(ys[keep], 0.0, None)
    if xs.size == 0:
        raise ValueError("lr: no finite logged values")
    last = xs[-1]

    def fn(steps: np.ndarray) -> np.ndarray:
        seen = np.interp(steps, xs, ys)
        if plan is None:
            return seen
        return np.where(steps <= last, seen, plan.lr(steps))

    horizon = max(int(total_steps), plan.total_steps if plan else 0)
    return Schedule(fn, horizon, "logged lr" + (" + plan" if plan else ""),
                    recipe=(schedule_from_logged, (xs, ys, plan, total_steps)),
                    read_off_lr=plan.read_off_lr if plan else "")
