"""Dev curves, cut logic, baselines and report formatting, shared by the offline evaluator and
the HTTP accuracy benchmark. Reads /work/shared/data-style folders: curves/<source>/*.csv."""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import curve_fit
from scipy.stats import binomtest

from workers.forecast.schedule import schedule_from_spec

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
LUO = DATA / "curves" / "multipowerlaw_luo2025"
# Curves made here by bench/train_curves.py. tinylm was held out until its cold forecasts'
# failure led to a law tried on it (2026-11-25, Weibull: reverted); tinylm_long (one size, 3x
# longer runs) was made after that, to check such changes on curves not developed on;
# tinylm_sched (a wider model, schedules none of the others has: linear, inverse square root,
# WSD cooldowns of 10 % (1 - sqrt) and 40 %) on 2026-12-06, held out the same way;
# tinylm_seeds (a deeper model, each run its own init and batch order, step and exponential
# decays) on 2026-12-07, the first set whose runs do not share their batches.
HERE = Path(__file__).resolve().parent / "data"
TINYLM, TINYLM_LONG, TINYLM_SCHED, TINYLM_SEEDS = (
    HERE / n for n in ("tinylm", "tinylm_long", "tinylm_sched", "tinylm_seeds"))
SOURCES = {"luo": LUO, "tinylm": TINYLM, "tinylm_long": TINYLM_LONG,
           "tinylm_sched": TINYLM_SCHED, "tinylm_seeds": TINYLM_SEEDS}
CUTS = (0.25, 0.5, 0.75)


@dataclass(frozen=True)
class DevRun:
    run_id: str
    model: str  # model size / group, e.g. "100M"
    family: str  # constant | cosine | wsd | step
    steps: np.ndarray
    loss: np.ndarray
    planned_steps: int  # total_steps as planned (cuts are fractions of it)
    lr_spec: dict  # the planned schedule as API SCHEDULE knots (from the logged lr)

    @property
    def target_step(self) -> int:
        """The last logged step: the truth we can score (a few runs ended before plan)."""
        return int(self.steps[-1])

    @property
    def truth(self) -> float:
        return float(self.loss[-1])

    def prefix(self, frac: float) -> tuple[np.ndarray, np.ndarray]:
        keep = self.steps <= frac * self.planned_steps
        return self.steps[keep], self.loss[keep]



def logged_lr(lr_spec: dict, steps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(steps, lr) a training loop logging at ``steps`` would have logged: the planned
    schedule there and, before the first of them (the Luo curves start after warmup), at as
    many steps from 0, so the warmup is logged too."""
    at = np.concatenate([np.linspace(0.0, steps[0], len(steps), endpoint=False), steps])
    return at, schedule_from_spec(lr_spec).lr(at)


def logged_between(lr: tuple[np.ndarray, np.ndarray], after: float, upto: float
                   ) -> tuple[np.ndarray, np.ndarray]:
    """The part of a logged ``lr`` (steps, values) after step ``after`` up to ``upto``: what a
    run logging in chunks sends with the chunk that ends at ``upto``."""
    keep = (lr[0] > after) & (lr[0] <= upto)
    return lr[0][keep], lr[1][keep]


def _family(name: str) -> str:
    for prefix, fam in (("constant", "constant"), ("cosine", "cosine"), ("wsdcon", "step"),
                        ("wsd", "wsd"), ("linear", "linear"), ("inverse_sqrt", "inverse_sqrt"),
                        ("step", "step"), ("exp", "exp")):
        if name.startswith(prefix):
            return fam
    return "other"


def load_curves(root: Path, split: str = "train") -> list[DevRun]:
    """The runs of one source folder (curves.csv + runs.csv, the layout of shared/data).

    The curve is the loss of rows of ``split`` ("train" or "val"); the schedule is knots from
    the lr logged with the train rows, plus the warmup from runs.csv.
    """
    rows: dict[str, list[tuple[int, float]]] = defaultdict(list)
    lrs: dict[str, list[tuple[int, float]]] = defaultdict(list)
    with open(root / "curves.csv") as fh:
        for r in csv.DictReader(fh):
            if r["split"] == split:
                rows[r["run_id"]].append((int(r["step"]), float(r["loss"])))
            if r["split"] == "train" and r["lr"]:
                lrs[r["run_id"]].append((int(r["step"]), float(r["lr"])))
    runs = []
    with open(root / "runs.csv") as fh:
        for meta in csv.DictReader(fh):
            pts = sorted(rows[meta["run_id"]])
            if not pts:
                continue
            steps = np.array([p[0] for p in pts], float)
            warm, peak = int(meta["warmup_steps"]), float(meta["peak_lr"])
            knots = [[0, 0.0], [warm, peak]] + [[s, lr] for s, lr in sorted(lrs[meta["run_id"]])
                                                if s > warm]
            runs.append(DevRun(meta["run_id"], meta["model"], _family(meta["schedule_name"]),
                               steps, np.array([p[1] for p in pts]), int(meta["total_steps"]),
                               {"knots": knots, "total_steps": int(steps[-1])}))
    return runs


def baseline_last(steps: np.ndarray, loss: np.ndarray) -> float:
    return float(loss[-1])


def baseline_power_law(steps: np.ndarray, loss: np.ndarray, target: int) -> float:
    """L = E + A step^-a least-squares on the prefix (the plain schedule-blind baseline)."""
    try:
        p, _ = curve_fit(lambda x, e, a, k: e + a * x**-k, steps, loss,
                         p0=[loss[-1] * 0.8, 10.0, 0.5], bounds=([0, 0, 0], [10, 1e6, 3]),
                         maxfev=20000)
    except RuntimeError:
        return float(loss[-1])
    return float(p[0] + p[1] * target ** -p[2])


def baseline_rows(base: dict, run: DevRun, steps: np.ndarray, loss: np.ndarray) -> list[dict]:
    """Report rows of the last-value and power-law baselines on the same prefix."""
    return [
        base | {"mode": "last", "err": rel_err(baseline_last(steps, loss), run.truth)},
        base | {"mode": "powerlaw",
                "err": rel_err(baseline_power_law(steps, loss, run.target_step), run.truth)},
    ]


def select_models(runs: list[DevRun], models: str) -> list[DevRun]:
    """The runs of the comma-separated model sizes (all runs when empty)."""
    keep = set(filter(None, models.split(",")))
    return [r for r in runs if not keep or r.model in keep]


def rel_err(pred: float | None, truth: float) -> float:
    return float("nan") if pred is None else abs(pred - truth) / truth


def interval_score(lower: float | None, upper: float | None, truth: float,
                   level: float = 0.9) -> float:
    """The interval score of a central ``level`` interval (Gneiting & Raftery 2007), relative
    to the truth: its width plus 2/alpha times any miss. Lower is better, and unlike coverage
    it cannot be won by a band that is merely wide: the one number to decide a change to the
    bands by (coverage and error are read beside it)."""
    if lower is None or upper is None:
        return float("nan")
    alpha = 1.0 - level
    miss = max(lower - truth, 0.0) + max(truth - upper, 0.0)
    return (upper - lower + 2.0 / alpha * miss) / truth


def _coverage_cell(hits: np.ndarray) -> str:
    """Coverage with its 95% Clopper-Pearson interval: with 9-27 forecasts per cell one miss
    moves coverage by 4-11 points, so a cell is read against that interval, not as a point."""
    k, n = int(hits.sum()), int(hits.size)
    ci = binomtest(k, n).proportion_ci(0.95)
    return f"{100 * k / n:.0f}% [{100 * ci.low:.0f}-{100 * ci.high:.0f}] n={n}"


def format_table(rows: Iterable[dict], keys: tuple[str, ...], metrics: tuple[str, ...]) -> str:
    """Group rows by ``keys`` and print median error %, coverage % (with its binomial 95%
    interval), mean interval score % and median ms per group."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        groups[tuple(r[k] for k in keys)].append(r)
    head = " ".join(f"{k:>10}" for k in keys) + " " + " ".join(
        f"{m:>20}" if m.startswith("cov") else f"{m:>12}" for m in metrics)
    lines = [head, "-" * len(head)]
    for g in sorted(groups, key=str):
        rs = groups[g]
        cells = []
        for m in metrics:
            vals = np.array([r[m] for r in rs if r.get(m) is not None], float)
            vals = vals[np.isfinite(vals)]
            if not vals.size:
                cells.append(f"{'-':>12}")
            elif m.startswith("cov"):
                cells.append(f"{_coverage_cell(vals):>20}")
            elif m.startswith("ms"):
                cells.append(f"{np.median(vals):>12.0f}")
            elif m.startswith("score"):  # a proper score is averaged, not a median
                cells.append(f"{100 * np.mean(vals):>11.2f}%")
            else:
                cells.append(f"{100 * np.median(vals):>11.2f}%")
        lines.append(" ".join(f"{str(v):>10}" for v in g) + " " + " ".join(cells))
    return "\n".join(lines)
