"""Batch noise shared by runs that saw the same batches: the value logged at the target step is
forecast off the level by the finished runs' own wiggle there, and only when the wiggles track."""

import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.signal import savgol_filter

from bench.curves_data import TINYLM_SCHED, TINYLM_SEEDS, load_curves
from tests.forecast.synthetic import annealing_curve, wsd
from workers.forecast.curve import ReferenceRun
from workers.forecast.schedule import schedule_from_spec
from workers.forecast.shared_noise import SMOOTH_POINTS, shared_noise, wiggles
from workers.forecast.trajectory import forecast_trajectory

TOTAL = 4000
STEPS = np.arange(250, TOTAL + 1, 10, dtype=float)
SCHED = wsd(TOTAL, 3200)
DIP = -0.04  # the batches at the last step are easy ones: every run logs 4% under its line


def _batches(seed: int) -> np.ndarray:
    """The log noise of one data order: 2% a logged point, and a dip at the last step."""
    noise = 0.02 * np.random.default_rng(seed).standard_normal(len(STEPS))
    noise[-1] = DIP
    return noise


def _run(level: float, batches: np.ndarray, seed: int) -> np.ndarray:
    own = 0.003 * np.random.default_rng(100 + seed).standard_normal(len(STEPS))
    return level * annealing_curve(SCHED, STEPS) * np.exp(batches + own)


def _refs(shared: bool) -> list[ReferenceRun]:
    return [ReferenceRun(STEPS, _run(level, _batches(0 if shared else i + 1), i), TOTAL, SCHED,
                         name=f"ref{i}") for i, level in enumerate((0.99, 1.0, 1.01))]


def test_runs_that_saw_the_same_batches_forecast_the_wiggle_at_the_target_step():
    values = _run(1.005, _batches(0), 9)
    seen = STEPS <= TOTAL / 2
    noise = shared_noise(STEPS[seen], values[seen], _refs(shared=True), TOTAL)
    assert noise is not None and noise.n_runs == 3 and noise.correlation > 0.9
    assert abs(noise.shift - DIP) < 0.01
    assert noise.scatter < 0.4  # the tracking leaves the run's own 0.3% of the 2% scatter


def test_runs_with_their_own_data_order_get_no_shift():
    values = _run(1.005, _batches(0), 9)
    seen = STEPS <= TOTAL / 2
    assert shared_noise(STEPS[seen], values[seen], _refs(shared=False), TOTAL) is None


def test_references_that_did_not_log_the_target_step_get_no_shift():
    values = _run(1.005, _batches(0), 9)
    seen = STEPS <= TOTAL / 2
    short = [ReferenceRun(r.steps[:-1], r.values[:-1], TOTAL, SCHED) for r in _refs(True)]
    assert shared_noise(STEPS[seen], values[seen], short, TOTAL) is None


def test_the_forecast_of_the_logged_value_moves_by_the_shared_wiggle_and_says_so():
    values = _run(1.005, _batches(0), 9)
    truth = float(values[-1])
    seen = STEPS <= TOTAL / 2
    kw = {"total_steps": TOTAL, "schedule": SCHED}
    shared = forecast_trajectory(STEPS[seen], values[seen], references=_refs(True), **kw)
    alone = forecast_trajectory(STEPS[seen], values[seen], references=_refs(False), **kw)
    assert shared.status == alone.status == "ready"
    assert "logged the same batches" in shared.prior
    assert alone.prior is None or "same batches" not in alone.prior
    # The level is the same forecast; only where the value will be logged moves. The curve
    # stays the level, to the target.
    assert np.isclose(shared.trend_mean, np.mean(shared.final_samples))
    assert abs(np.log(shared.final_mean / shared.trend_mean) - DIP) < 0.01
    assert abs(np.log(shared.final_mean / truth)) < abs(np.log(alone.final_mean / truth)) / 2
    assert shared.final_lower <= truth <= shared.final_upper
    # The shared part of the scatter is forecast, so the band for the logged value narrows.
    assert (shared.final_upper - shared.final_lower
            < shared.curve_upper[-1] - shared.curve_lower[-1])


def test_references_read_as_bucket_means_of_another_width_get_no_shift():
    """Means of 3 points sit at every third logged step: a third of the run's steps in common,
    each the mean of other batches, which is no pairing."""
    values = _run(1.005, _batches(0), 9)
    seen = STEPS <= TOTAL / 2
    n = len(STEPS) // 3 * 3
    means = [ReferenceRun(r.steps[:n].reshape(-1, 3).mean(1), r.values[:n].reshape(-1, 3).mean(1),
                          TOTAL, SCHED) for r in _refs(True)]
    assert all(float(s).is_integer() for s in means[0].steps)
    assert shared_noise(STEPS[seen], values[seen], means, int(means[0].steps[-1])) is None


def test_wiggles_are_savitzky_golay_residuals_left_out_of_their_own_smooth():
    logs = np.log(_run(1.0, _batches(3), 3))
    residual = logs - savgol_filter(logs, SMOOTH_POINTS, 2, mode="interp")
    w = wiggles(np.exp(logs))
    # Interior points keep 1 - 0.108 of the residual, the last one 1 - 0.356 (the hat diagonal).
    np.testing.assert_allclose(w[len(w) // 2] * (1 - 0.10755), residual[len(w) // 2], rtol=1e-4)
    np.testing.assert_allclose(w[-1] * (1 - 0.35630), residual[-1], rtol=1e-4)
    assert np.corrcoef(w, residual)[0, 1] > 0.99


@settings(max_examples=200, deadline=None, derandomize="CI" in os.environ, database=None)
@given(data=st.data())
def test_any_curves_give_a_finite_shift_or_none(data):
    """Sweeps of shared wiggles of any size, flat or wiggle-free curves, wild values, steps
    partly shared: never an error, never a non-finite shift (it would reach the stored
    forecast)."""
    grid = np.arange(0.0, 10.0 * data.draw(st.integers(SMOOTH_POINTS, 80)), 10.0)
    shared = np.random.default_rng(data.draw(st.integers(0, 99))).standard_normal(len(grid) + 5)

    def curve(steps: np.ndarray) -> np.ndarray:
        kind = data.draw(st.sampled_from(["shared", "shared", "flat", "line", "wild"]))
        if kind == "flat":
            return np.full(len(steps), data.draw(st.floats(1e-6, 1e6)))
        if kind == "line":
            return np.exp(-steps / 1000.0)  # log-linear: no wiggle at all
        if kind == "wild":
            return np.array(data.draw(st.lists(st.floats(1e-6, 1e6), min_size=len(steps),
                                               max_size=len(steps))))
        scale = data.draw(st.floats(0.0, 0.2))
        own = data.draw(st.floats(0.0, 0.2))
        noise = np.random.default_rng(data.draw(st.integers(0, 99))).standard_normal(len(steps))
        return 2.0 * np.exp(scale * shared[(steps // 10).astype(int)] + own * noise)

    seen = grid[:data.draw(st.integers(SMOOTH_POINTS, len(grid)))]
    refs = []
    for _ in range(data.draw(st.integers(0, 3))):
        ref_steps = np.unique(np.concatenate([grid, grid[-1] + 10.0 * np.arange(
            data.draw(st.integers(0, 4)))]))
        refs.append(ReferenceRun(ref_steps, curve(ref_steps), int(ref_steps[-1]), None))
    target = int(refs[0].steps[-1]) if refs else int(grid[-1])
    noise = shared_noise(seen, curve(seen), refs, target)
    assert noise is None or (np.isfinite(noise.shift) and 0 <= noise.scatter <= 1
                             and noise.correlation >= 0.5)


@pytest.mark.parametrize(("root", "shares"), [(TINYLM_SEEDS, False), (TINYLM_SCHED, True)],
                         ids=["own batches", "shared batches"])
def test_real_runs_get_a_shift_exactly_when_they_saw_the_same_batches(root, shares):
    """Real curves (bench/data): tinylm_seeds' runs each draw their own batches, tinylm_sched's
    share them. Half-way through each run, beside the set's other runs as references, with the
    points after warmup as forecast_trajectory passes them."""
    runs = load_curves(root)
    for run in runs:
        refs = [ReferenceRun(r.steps, r.loss, r.target_step, None, name=r.run_id)
                for r in runs if r is not run]
        warmup = schedule_from_spec(run.lr_spec).peak_step(run.target_step)
        steps, values = run.prefix(0.5)
        post = steps >= warmup
        noise = shared_noise(steps[post], values[post], refs, run.target_step)
        assert (noise is not None) == shares, run.run_id
