"""How often a stop Curvecast would make is wrong, by how many finished runs it rests on.

    .venv/bin/python -m bench.stop_calibration [--source luo] [--orders 6] [--threshold 0.9]

Every run of every sweep (bench/sweeps.py) runs to the end, and at each checkpoint from 10 % to
95 % it is forecast with the sweep's runs finished before it as references, as
bench.early_stopping's offline replay does, and judged against the best of them
(stopping.judge, with the paired check). A decision is *wrong* when it says stop but the run
truly ended better than that reference. Rows are grouped by how many finished runs there were,
with the forecast's band coverage of the true final value, the band's median width and its
mean interval score (lower is better; it cannot be won by width alone); "on
the forecast's own draws" is what the stop would be without the pools and checks that guard
it (trajectory._calibrated, _even_pool), the anchor in the same run. Last, the same forecasts
judged against the same values as target values of a stop policy (exact, nothing to pair
with): the stops that rest on a guessed lr drop (TrajectoryForecast.decay_guessed) are counted.

Unlike bench.early_stopping nothing is stopped, so later runs meet more finished runs than
they would there: this measures the decisions, not the steps saved.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np

from bench.curves_data import interval_score
from bench.early_stopping import MIN_PROGRESS, _finished, judged
from bench.sweeps import TINYLM_SETS, Sweep, real_sweeps, sim_sweeps, tinylm_sweeps
from workers.forecast import stopping
from workers.tasks import MAX_CANDIDATES


@dataclass(frozen=True)
class Judged:
    n_refs: int  # finished runs offered
    stop: bool  # what stopping.judge decided
    stop_own: bool  # p on the forecast's own draws alone >= threshold
    wrong: bool  # ... and the run truly ended better than the reference
    covered: bool  # the forecast's band holds the true final value
    width: float  # the band's width, relative to the true final value
    score: float  # its 90% interval score (curves_data.interval_score), relative
    stop_target: bool  # the stop against the reference's value as a target (no paired check)
    decay_guessed: bool  # the forecast prices an lr decay ahead by the default prior
    where: str  # sweep, run, progress and reference, to trace a wrong stop


def judge_sweep(sweep: Sweep, threshold: float) -> list[Judged]:
    out: list[Judged] = []
    finished = []  # (reference, fitted final value, its sd, true final value)
    for run in sweep.runs:
        refs = [f[0] for f in finished[::-1][:MAX_CANDIDATES]]
        best = min(finished, key=lambda f: f[1]) if finished else None
        for frac, _, fc, d in judged(run, refs, best[:3], threshold) if best else ():
            ref, value, sd, truth = best
            own = stopping.p_underperform(fc.final_samples, value, "min", sd) >= threshold
            # A target value is exact and has no run to pair with (API.md stop policies).
            target = stopping.judge(fc, value, "min", 0.0, threshold, frac, MIN_PROGRESS)
            out.append(Judged(len(refs), d.stop, own, run.final < truth,
                              fc.final_lower <= run.final <= fc.final_upper,
                              (fc.final_upper - fc.final_lower) / run.final,
                              interval_score(fc.final_lower, fc.final_upper, run.final),
                              target.stop, fc.decay_guessed,
                              f"{sweep.name} {run.name} at {frac:.0%} against {ref.name}"))
        finished.append((*_finished(run, refs), run.final))
    return out


def table(judged: list[Judged]) -> str:
    groups: dict[str, list[Judged]] = defaultdict(list)
    for j in judged:
        groups[str(j.n_refs) if j.n_refs < 4 else "4+"].append(j)
    groups["all"] = judged
    lines = ["| finished runs | forecasts | band coverage | band width (median) | score90 (mean) "
             "| stops | wrong | on the forecast's own draws: stops | wrong |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for key, rows in sorted(groups.items(), key=lambda kv: (kv[0] == "all", kv[0])):
        cover = sum(j.covered for j in rows) / len(rows)
        stops = [j for j in rows if j.stop]
        own = [j for j in rows if j.stop_own]
        width = float(np.median([j.width for j in rows]))
        score = float(np.mean([j.score for j in rows]))
        lines.append(f"| {key} | {len(rows)} | {100 * cover:.0f}% | {100 * width:.2f}% | "
                     f"{100 * score:.2f}% | {len(stops)} | "
                     f"{sum(j.wrong for j in stops)} | {len(own)} | {sum(j.wrong for j in own)} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", default="luo", choices=["luo", "sim", *TINYLM_SETS])
    ap.add_argument("--orders", type=int, default=6, help="start orders (sim: seeds)")
    ap.add_argument("--threshold", type=float, default=0.9)
    args = ap.parse_args()
    if args.source == "luo":
        sweeps = real_sweeps(args.orders)
    elif args.source == "sim":
        sweeps = sim_sweeps(args.orders)
    else:
        sweeps = tinylm_sweeps(args.orders, name=args.source)
    with ProcessPoolExecutor() as pool:
        judged = [j for js in pool.map(judge_sweep, sweeps, [args.threshold] * len(sweeps))
                  for j in js]
    print(f"{args.source}: {len(sweeps)} sweeps, threshold {args.threshold:g}")
    print(table(judged))
    for j in judged:
        if j.stop and j.wrong:
            print(f"wrong stop: {j.where}")
    target = [j for j in judged if j.stop_target]
    wrong = [j for j in target if j.wrong]
    print(f"against the same values as targets (exact, no paired check): {len(target)} stops, "
          f"{len(wrong)} wrong, {sum(j.decay_guessed for j in wrong)} of them on a guessed drop "
          f"(of {sum(j.decay_guessed for j in target)} stops on one)")
    for j in wrong:
        print(f"wrong target stop{' (guessed drop)' if j.decay_guessed else ''}: {j.where}")


if __name__ == "__main__":
    main()
