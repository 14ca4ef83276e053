"""Real public curves (Luo et al. 2025, /work/shared/data): the science must beat baselines."""

from pathlib import Path

import numpy as np
import pytest

from bench.curves_data import baseline_power_law, load_curves
from workers.forecast.schedule import schedule_from_spec
from workers.forecast.trajectory import forecast_trajectory

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
LUO = DATA / "curves" / "multipowerlaw_luo2025"

pytestmark = pytest.mark.skipif(not LUO.exists(), reason="dev data not present")


def test_half_run_forecast_beats_the_power_law_baseline_on_real_curves():
    errs, base, hits = [], [], []
    for run in load_curves(LUO):
        steps, loss = run.prefix(0.5)
        fc = forecast_trajectory(steps, loss, total_steps=run.target_step,
                                 schedule=schedule_from_spec(run.lr_spec))
        assert fc.status == "ready", run.run_id
        errs.append(abs(fc.final_mean / run.truth - 1))
        base.append(abs(baseline_power_law(steps, loss, run.target_step) / run.truth - 1))
        hits.append(fc.final_lower <= run.truth <= fc.final_upper)
    assert np.median(errs) < 0.5 * np.median(base)
    assert np.median(errs) < 0.0075  # the cold target at the 50% cut
    assert np.mean(hits) >= 0.75
