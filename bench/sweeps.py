"""Sweeps for the early-stopping benchmark: sets of runs meant to be compared, in start order.

Real sweeps are the Luo et al. 2025 dev curves grouped by model size and planned length (the
runs of a group differ only in their LR schedule), replayed in a few seeded start orders.
Simulated sweeps draw LR sweeps from the LR-annealing law of Tissue et al. 2024
(L = L0 + A S1^-alpha - C S2) fitted to those same curves, with an LR-dependent floor (too high
a peak LR ends worse), per-seed jitter and realistic logging noise (white + AR(1) + spikes).
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares

from bench.curves_data import (
    LUO,
    TINYLM,
    TINYLM_LONG,
    TINYLM_SCHED,
    TINYLM_SEEDS,
    DevRun,
    load_curves,
)
from workers.forecast.calibration import final_value
from workers.forecast.schedule import Schedule, schedule_from_spec

BASE_LR = 3e-4  # the Luo runs' peak lr; simulated peak lrs are multiples m of it
SIM_STEPS = 20_000
LAMS = (0.99, 0.995, 0.999)  # annealing momentum candidates for the law fit


@dataclass(frozen=True)
class SweepRun:
    name: str
    steps: np.ndarray
    loss: np.ndarray  # what the run logs (noisy for simulated runs)
    final: float  # the true final value the sweep is scored on
    total_steps: int
    lr_spec: dict  # API SCHEDULE


@dataclass(frozen=True)
class Sweep:
    name: str
    source: str  # "real" | "sim"
    kind: str  # e.g. "luo-24000", "sim-mixed"
    runs: tuple[SweepRun, ...]  # in start order

    @property
    def best(self) -> int:
        return int(np.argmin([r.final for r in self.runs]))


def last_value(r: DevRun) -> float:
    """A run's last logged value: its final where the sweep's runs share their batches (the
    last point's batch noise is then the same in every run, so it ranks them fairly)."""
    return r.truth


END_SHARE = 0.05


def end_level(r: DevRun) -> float:
    """The mean of a run's logged values over its last END_SHARE of steps: its final where
    every run draws its own batches, whose last 10-step mean is +-2-3 % noise of its own
    (tinylm_seeds) and would pick a sweep's best run by chance."""
    return final_value(r.steps, r.loss, END_SHARE)


def _real_run(r: DevRun, final: Callable[[DevRun], float] = last_value) -> SweepRun:
    # A few runs ended before plan: their last logged step is the target we can score.
    return SweepRun(r.run_id, r.steps, r.loss, final(r), r.target_step, r.lr_spec)


def _orders(runs: list[DevRun], orders: int, rng: np.random.Generator,
            final: Callable[[DevRun], float]) -> list[tuple[SweepRun]]:
    """Up to `orders` distinct seeded start orders of `runs`."""
    perms = list(itertools.permutations(range(len(runs))))
    picks = rng.choice(len(perms), size=min(orders, len(perms)), replace=False)
    return [tuple(_real_run(runs[j], final) for j in perms[pick]) for pick in picks]


def _sweeps(runs: list[DevRun], key: Callable[[DevRun], tuple], source: str,
            names: Callable[[tuple], tuple[str, str]], orders: int, seed: int,
            final: Callable[[DevRun], float] = last_value) -> list[Sweep]:
    """The runs grouped by `key`, each group in up to `orders` seeded start orders;
    `names(key)` gives a group's sweep name and kind, `final` the value a run is scored on."""
    groups: dict[tuple, list[DevRun]] = defaultdict(list)
    for r in runs:
        groups[key(r)].append(r)
    rng = np.random.default_rng(seed)
    out = []
    for k, group in sorted(groups.items()):
        name, kind = names(k)
        out += [Sweep(f"{name}-o{i}", source, kind, order)
                for i, order in enumerate(_orders(group, orders, rng, final))]
    return out


def real_sweeps(orders: int = 3, seed: int = 0) -> list[Sweep]:
    """Luo runs grouped by (model size, planned length): schedule sweeps at one peak lr."""
    return _sweeps(load_curves(LUO), lambda r: (r.model, r.planned_steps), "real",
                   lambda k: (f"luo-{k[0]}-{k[1]}", f"luo-{k[1]}"), orders, seed)


# Sets of real LR sweeps made here: folder, source name in the benchmark's tables, the value
# a run is scored on.
TINYLM_SETS = {"tinylm": (TINYLM, "real-lr", last_value),
               "tinylm_long": (TINYLM_LONG, "real-lr-long", last_value),
               "tinylm_sched": (TINYLM_SCHED, "real-lr-sched", last_value),
               "tinylm_seeds": (TINYLM_SEEDS, "real-lr-seeds", end_level)}


def tinylm_sweeps(orders: int = 3, seed: int = 0, name: str = "tinylm") -> list[Sweep]:
    """Learning-rate sweeps of real runs made here (bench/train_curves.py): the runs of one
    model size and schedule family at every peak lr. tinylm_long (3x longer runs, 3 peak lrs
    per schedule) and tinylm_sched (a wider model, 3 peak lrs of schedules the others lack; its
    two WSD cooldowns share one sweep) were kept out of the stop policy's development: added to
    this benchmark only after it (2026-12-06); tinylm_seeds (each run its own seeds, step and
    exponential decays) was made and added on 2026-12-07, with no change to the policy."""
    root, source, final = TINYLM_SETS[name]
    return _sweeps(load_curves(root), lambda r: (r.model, r.family), source,
                   lambda k: (f"{name}-{k[0]}-{k[1]}", f"{name}-{k[1]}"), orders, seed, final)


@dataclass(frozen=True)
class AnnealingLaw:
    L0: float
    A: float
    alpha: float
    C: float
    lam: float

    def __call__(self, sched: Schedule, steps: np.ndarray) -> np.ndarray:
        s1 = np.maximum(sched.forward_area(steps), 1e-12)
        return self.L0 + self.A * s1 ** -self.alpha - self.C * sched.annealing_area(steps,
                                                                                     self.lam)


def fit_luo_laws() -> dict[str, AnnealingLaw]:
    """The annealing law fitted jointly to the 9 schedules of each Luo model size."""
    groups: dict[str, list[DevRun]] = defaultdict(list)
    for r in load_curves(LUO):
        groups[r.model].append(r)
    laws = {}
    for model, runs in groups.items():
        data = [(schedule_from_spec(r.lr_spec), r.steps, r.loss) for r in runs]
        best = None
        for lam in LAMS:
            def resid(p, lam=lam, data=data):
                law = AnnealingLaw(*p, lam)
                return np.concatenate([law(s, st) / y - 1.0 for s, st, y in data])
            fit = least_squares(resid, [2.5, 0.5, 0.5, 1.0],
                                bounds=([0, 0, 0, 0], [10, 100, 3, 1e4]))
            if best is None or fit.cost < best[0]:
                best = (fit.cost, AnnealingLaw(*fit.x, lam))
        laws[model] = best[1]
    return laws


def _spec(shape: str, m: float, total: int) -> dict:
    peak = m * BASE_LR
    spec = {"peak_lr": peak, "warmup_steps": total // 20, "total_steps": total,
            "final_lr": 0.1 * peak}
    if shape.startswith("wsd"):  # "wsd80": decay over the last 20%
        return {**spec, "type": "wsd", "decay_start": int(total * int(shape[3:]) / 100),
                "decay_shape": "linear"}
    if shape == "constant":
        return {**spec, "type": "constant", "final_lr": peak}
    return {**spec, "type": shape}


def _noise(rng: np.random.Generator, n: int, white: float = 0.005, ar: float = 0.003,
           phi: float = 0.97, spike_p: float = 0.005) -> np.ndarray:
    """Relative logging noise: white, an AR(1) wander and rare heavy-tailed upward spikes."""
    eps = rng.normal(0.0, ar * np.sqrt(1 - phi**2), n)
    wander = np.zeros(n)
    for i in range(1, n):
        wander[i] = phi * wander[i - 1] + eps[i]
    spikes = (rng.random(n) < spike_p) * np.abs(rng.standard_t(3, n)) * 0.015
    return rng.normal(0.0, white, n) + wander + spikes


def _sim_run(name: str, law: AnnealingLaw, shape: str, m: float, m_star: float, kappa: float,
             rng: np.random.Generator, total: int = SIM_STEPS) -> SweepRun:
    spec = _spec(shape, m, total)
    sched = schedule_from_spec(spec)
    # Past the best peak lr the run ends on a higher floor; seeds shift floor and amplitude.
    floor = law.L0 + kappa * max(np.log2(m / m_star), 0.0) ** 2 + rng.normal(0.0, 0.002)
    jit = AnnealingLaw(floor, law.A * np.exp(rng.normal(0.0, 0.02)), law.alpha, law.C, law.lam)
    steps = np.arange(total // 100, total + 1, total // 200, dtype=float)
    clean = jit(sched, steps)
    return SweepRun(name, steps, clean * (1.0 + _noise(rng, len(steps))), float(clean[-1]),
                    total, spec)


SIM_KINDS = {
    # kind: (schedule shapes, lr multiples); runs = every (shape, m) pair, in random order
    "sim-lr-cosine": (("cosine",), tuple(np.geomspace(0.25, 4.0, 10))),
    "sim-lr-wsd": (("wsd80",), tuple(np.geomspace(0.25, 4.0, 10))),
    "sim-mixed": (("cosine", "linear", "wsd80", "constant"), (0.5, 1.0, 2.0)),
}


def sim_sweeps(seeds: int = 3, seed: int = 0) -> list[Sweep]:
    """`seeds` sweeps of every kind in SIM_KINDS; each draws a model size, the best lr
    multiple and the high-lr penalty, jitters the lr grid, and shuffles the start order."""
    laws = fit_luo_laws()
    sizes = sorted(laws)
    out = []
    for kind, (shapes, ms) in SIM_KINDS.items():
        for s in range(seeds):
            rng = np.random.default_rng([seed, s, len(kind)])
            size = sizes[s % len(sizes)]
            m_star = float(np.exp(rng.uniform(np.log(0.5), np.log(1.5))))
            kappa = rng.uniform(0.1, 0.2)
            pairs = [(sh, float(m * np.exp(rng.uniform(-0.1, 0.1)))) for sh in shapes for m in ms]
            order = rng.permutation(len(pairs))
            runs = tuple(_sim_run(f"{pairs[i][0]}-m{pairs[i][1]:.2f}", laws[size], *pairs[i],
                                  m_star, kappa, rng) for i in order)
            out.append(Sweep(f"{kind}-{size}-s{s}", "sim", kind, runs))
    return out
