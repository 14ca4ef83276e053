"""The curve sets made here (bench/train_curves.py): what the benchmarks tell Curvecast about a
run's schedule is what its trainer used."""

import csv
import json
from collections import defaultdict

import numpy as np
import pytest

from bench.curves_data import TINYLM, TINYLM_LONG, TINYLM_SCHED, TINYLM_SEEDS, load_curves
from workers.forecast.schedule import schedule_from_spec
from workers.forecast.shared_noise import MIN_CORRELATION, wiggles

SETS = [TINYLM, TINYLM_LONG, TINYLM_SCHED, TINYLM_SEEDS]


@pytest.mark.parametrize("root", SETS, ids=lambda p: p.name)
def test_every_logged_lr_is_the_lr_schedule_of_its_run(root):
    with open(root / "runs.csv") as fh:
        specs = {r["run_id"]: json.loads(r["lr_spec"]) for r in csv.DictReader(fh)}
    logged = defaultdict(list)
    with open(root / "curves.csv") as fh:
        for r in csv.DictReader(fh):
            if r["split"] == "train":
                logged[r["run_id"]].append((float(r["step"]), float(r["lr"])))
    assert set(logged) == set(specs)
    for run_id, points in logged.items():
        steps, lrs = np.array(points).T
        planned = schedule_from_spec(specs[run_id]).lr(steps)
        np.testing.assert_allclose(lrs, planned, rtol=1e-5, atol=1e-12, err_msg=run_id)


@pytest.mark.parametrize("root", SETS, ids=lambda p: p.name)
def test_every_run_has_a_schedule_family(root):
    runs = load_curves(root)
    assert runs and all(r.family != "other" for r in runs)


def _wiggle_correlations(root) -> list[float]:
    """Correlations of the train curves' wiggles (shared_noise.wiggles) over every pair of runs
    of one size, past the first 10 % of steps (the warmup and first fall, whose curvature a
    local quadratic misses alike in every run): how far the runs saw the same batches."""
    runs = load_curves(root)
    out = []
    for i, a in enumerate(runs):
        for b in runs[i + 1:]:
            if a.model == b.model:
                assert np.array_equal(a.steps, b.steps)
                late = a.steps > 0.1 * a.planned_steps
                out.append(float(np.corrcoef(wiggles(a.loss)[late], wiggles(b.loss)[late])[0, 1]))
    return out


def test_the_runs_of_tinylm_seeds_draw_their_own_batches_where_tinylm_sched_share_theirs():
    """tinylm_seeds exists to check the forecaster and the stops on runs whose batch noise is
    their own (bench/train_curves.py --seed-per-run); the other sets share it."""
    own, shared = _wiggle_correlations(TINYLM_SEEDS), _wiggle_correlations(TINYLM_SCHED)
    assert max(np.abs(own)) < MIN_CORRELATION / 2
    assert min(shared) > MIN_CORRELATION
