"""The curve sets made here (bench/train_curves.py): what the benchmarks tell Curvecast about a
run's schedule is what its trainer used."""

import csv
import json
from collections import defaultdict

import numpy as np
import pytest

from bench.curves_data import TINYLM, TINYLM_LONG, TINYLM_SCHED, load_curves
from workers.forecast.schedule import schedule_from_spec


@pytest.mark.parametrize("root", [TINYLM, TINYLM_LONG, TINYLM_SCHED], ids=lambda p: p.name)
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


@pytest.mark.parametrize("root", [TINYLM, TINYLM_LONG, TINYLM_SCHED], ids=lambda p: p.name)
def test_every_run_has_a_schedule_family(root):
    runs = load_curves(root)
    assert runs and all(r.family != "other" for r in runs)
