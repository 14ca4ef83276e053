"""Calibration on finished runs: replayed forecasts correct a shared bias and too-narrow bands."""

import re

import numpy as np

from tests.forecast.synthetic import noisy
from workers.forecast import calibration as calibration_module
from workers.forecast import trajectory, transfer
from workers.forecast.calibration import (
    Z90,
    calibration,
    few_run_calibration,
    final_value,
)
from workers.forecast.laws import power_law
from workers.forecast.schedule import schedule_from_spec
from workers.forecast.stopping import p_underperform
from workers.forecast.trajectory import ReferenceRun, forecast_trajectory

TOTAL = 10_000
CONSTANT = schedule_from_spec({"type": "constant", "peak_lr": 1e-3, "warmup_steps": 200,
                               "total_steps": TOTAL})


def _replays(actual: list[float], off: list[float], rel_sd: float) -> list[np.ndarray]:
    """Forecast draws off by the factors ``off`` from ``actual``, with a +-rel_sd band."""
    rng = np.random.default_rng(0)
    return [a * o * np.exp(rel_sd * rng.standard_normal(400))
            for a, o in zip(actual, off, strict=True)]


def test_a_bias_the_replays_share_is_removed_and_narrow_bands_widened():
    # Every replay was 5% high with a +-1% band: the bias is plain, the bands 5x too narrow.
    actual = [2.0, 2.1, 2.2, 2.3, 2.4]
    off = [1.05, 1.04, 1.06, 1.05, 1.055]
    cal = calibration(_replays(actual, off, 0.002), actual)
    assert cal is not None
    assert 0.04 < cal.bias < 0.055
    assert cal.scale > 2.0
    assert "5 finished runs" in cal.note()


def test_in_an_lr_sweep_the_bias_is_taken_at_this_runs_lr_not_averaged_over_the_others():
    # The replays' errors grow with their peak lr (a line in log lr, plus a little scatter),
    # and this run has the sweep's top lr: its bias is the line's value there (0.06), where
    # the mean over the sweep (0.025, less after shrinkage) would leave most of it.
    actual = [2.0, 2.1, 2.2, 2.3, 2.4, 2.5]
    log_lr = np.log([1 / 32, 1 / 16, 1 / 8, 1 / 4, 1 / 2, 1.0])  # peak lr / this run's
    err = 0.06 + 0.02 * log_lr + np.array([0.002, -0.001, 0.001, -0.002, 0.001, -0.001])
    replays = _replays(actual, list(np.exp(err)), 0.01)
    by_lr = calibration(replays, actual, list(log_lr))
    flat = calibration(replays, actual)
    assert by_lr is not None and flat is not None and by_lr.by_lr and not flat.by_lr
    assert abs(by_lr.bias - 0.06) < 0.004  # the line at this run's lr
    assert flat.bias < 0.026  # the mean, shrunk: the spread of the sweep looks like noise
    assert by_lr.spread < 0.5 * flat.spread  # the line explains what the mean called spread
    assert "a line in their peak lr" in by_lr.note()
    # Beyond the replays' lrs the line is not extrapolated: taken at the nearest of them.
    below = calibration(replays, actual, list(log_lr + np.log(64.0)))  # this run at 1/64
    assert below is not None and abs(below.bias - float(err[0])) < 0.006


def test_without_a_spread_of_lrs_or_enough_replays_the_bias_is_the_mean():
    actual = [2.0, 2.1, 2.2, 2.3, 2.4, 2.5]
    err = np.array([0.05, 0.06, 0.04, 0.055, 0.045, 0.05])
    replays = _replays(actual, list(np.exp(err)), 0.01)
    flat = calibration(replays, actual)
    one_lr = calibration(replays, actual, [0.0] * 6)  # a sweep of schedules at one lr
    near = calibration(replays, actual, list(np.log([1.0, 1.1, 1.2, 1.0, 1.1, 1.2])))
    few = calibration(replays[:4], actual[:4], list(np.log([0.25, 1.0, 4.0, 8.0])))
    few_flat = calibration(replays[:4], actual[:4])
    for cal, ref in ((one_lr, flat), (near, flat), (few, few_flat)):
        assert cal is not None and ref is not None and not cal.by_lr
        assert (cal.bias, cal.ratio, cal.spread) == (ref.bias, ref.ratio, ref.spread)


def test_errors_within_their_own_noise_are_mostly_not_removed():
    rng = np.random.default_rng(0)
    actual = list(2.0 + rng.random(8))
    err = [0.02, -0.018, 0.011, -0.025, 0.004, -0.009, 0.021, -0.012]  # mean ~0
    cal = calibration(_replays(actual, list(np.exp(err)), 0.03), actual)
    assert cal is not None
    assert abs(cal.bias) < 0.3 * abs(float(np.mean(err))) + 1e-4
    assert cal.scale == 1.0  # bands of +-5% already cover +-2% errors: never narrowed


def test_fewer_than_three_replays_say_nothing():
    assert calibration(_replays([2.0, 2.0], [1.05, 1.1], 0.01), [2.0, 2.0]) is None


def test_one_or_two_replays_widen_a_band_by_their_errors_and_remove_no_bias():
    actual = [2.0, 2.2]
    few = few_run_calibration(_replays(actual, [1.06, 1.05], 0.005), actual)
    assert few is not None and few.bias == 0.0
    assert few.scale > 5  # errors of 5-6% against bands of +-0.8%
    assert "too few finished runs" in few.note() and "+5.8%" in few.note()
    assert few_run_calibration([], []) is None  # nothing replayed: nothing to go on
    assert few_run_calibration(_replays([2.0] * 3, [1.05] * 3, 0.01), [2.0] * 3) is None


def test_a_band_widened_by_one_or_two_replays_covers_where_the_errors_are_up_to_twice_its_own():
    # The replayed and the next run err alike, by ratio times their bands' sd. Unwidened, a
    # band covers P(|z| < 1.645 / ratio): 90% at 1, 59% at 2. Widened by one or two replays'
    # errors (few_run_calibration), it holds at least 85% up to twice its own width.
    rng = np.random.default_rng(5)
    own = 0.01
    for k in (1, 2):
        for ratio in (0.5, 1.0, 2.0):
            covered = []
            for _ in range(400):
                actual = list(2.0 + rng.random(k))
                err = ratio * own * rng.standard_normal(k)
                few = few_run_calibration(_replays(actual, list(np.exp(err)), own), actual)
                assert few is not None
                covered.append(abs(ratio * own * rng.standard_normal()) < Z90 * own * few.scale)
            assert np.mean(covered) >= 0.85, (k, ratio, np.mean(covered))


def test_applying_shifts_the_end_not_the_start_and_keeps_the_widening_centred():
    actual = [2.0, 2.2, 2.4]
    cal = calibration(_replays(actual, [1.08, 1.1, 1.12], 0.002), actual)
    assert cal is not None and cal.bias > 0.05 and cal.scale > 2.0
    sim = np.tile(np.array([3.0, 2.5, 2.2]), (200, 1)) * np.exp(
        0.01 * np.random.default_rng(1).standard_normal((200, 1)))
    out = cal.apply(sim, np.array([0.0, 0.5, 1.0]), np.random.default_rng(2))
    assert np.allclose(out[:, 0], sim[:, 0])  # nothing moves at the last observation
    # Mean-preserving widening: only the bias moves the forecast (to sampling precision).
    assert abs(np.mean(out[:, -1]) / np.mean(sim[:, -1]) / np.exp(-cal.bias) - 1) < 0.002
    widened = np.std(np.log(out[:, -1]))
    assert 2 * np.std(np.log(sim[:, -1])) < widened <= 1.05 * cal.cap


def test_final_value_averages_the_last_two_percent_of_steps():
    steps = np.arange(0, 1001, 5, dtype=float)
    values = np.full(steps.shape, 2.0)
    values[-1] = 1.0  # one noisy last point among the five in the last 20 steps
    assert final_value(steps, values) == np.mean(values[steps >= 980])


def _late_drop_run(amp: float, upto: int, seed: int) -> tuple[np.ndarray, np.ndarray, float]:
    """A curve with a shared late drop (a capability appearing at 70%) that no law in the
    forecaster has: every forecast from before it runs high by about the same amount."""
    def law(t: np.ndarray) -> np.ndarray:
        return 1.8 + amp * t**-0.3 - 0.12 / (1 + np.exp(-(t - 0.7 * TOTAL) / (0.04 * TOTAL)))

    t = np.arange(250, upto + 1, 25, dtype=float)
    y = noisy(law(t), 2e-3, np.random.default_rng(seed))
    return t, y, float(law(np.array([float(TOTAL)]))[0])


def _late_drop_refs(amps: tuple[float, ...], seed: int, name: str) -> list[ReferenceRun]:
    """Finished runs with the shared late drop, one per amplitude, named name0, name1, ..."""
    refs = []
    for i, amp in enumerate(amps):
        rt, ry, _ = _late_drop_run(amp, TOTAL, seed=seed + i)
        refs.append(ReferenceRun(rt, ry, TOTAL, CONSTANT, name=f"{name}{i}"))
    return refs


def test_finished_runs_that_show_a_late_drop_correct_a_forecast_made_before_it():
    refs = _late_drop_refs((2.4, 2.7, 3.0, 3.3, 3.6), seed=10, name="ref")
    t, y, truth = _late_drop_run(2.85, TOTAL // 2, seed=1)
    plain = forecast_trajectory(t, y, total_steps=TOTAL, schedule=CONSTANT, references=refs,
                                calibrate=False)
    cal = forecast_trajectory(t, y, total_steps=TOTAL, schedule=CONSTANT, references=refs)
    plain_err, cal_err = plain.final_mean / truth - 1, cal.final_mean / truth - 1
    assert plain_err > 0.02 and not plain.final_lower <= truth <= plain.final_upper
    assert abs(cal_err) < plain_err / 3
    assert cal.final_lower <= truth <= cal.final_upper
    assert "calibrated on 5 finished runs" in cal.prior


def _lr_sweep_run(lr_ratio: float, upto: int, seed: int) -> tuple[np.ndarray, np.ndarray, float]:
    """A run of an lr sweep (peak lr 1e-3 x ``lr_ratio``) whose late drop, which no law has,
    grows with its lr: a forecast made before it errs by more the higher the lr."""
    drop = 0.06 * (1.0 + np.log2(lr_ratio))

    def law(t: np.ndarray) -> np.ndarray:
        return 1.8 + 2.7 * t**-0.3 - drop / (1 + np.exp(-(t - 0.7 * TOTAL) / (0.04 * TOTAL)))

    t = np.arange(250, upto + 1, 25, dtype=float)
    return t, noisy(law(t), 2e-3, np.random.default_rng(seed)), float(law(np.array([TOTAL]))[0])


def _constant_at(lr_ratio: float):
    return schedule_from_spec({"type": "constant", "peak_lr": 1e-3 * lr_ratio,
                               "warmup_steps": 200, "total_steps": TOTAL})


def test_in_an_lr_sweep_a_run_is_corrected_by_how_the_replays_erred_at_its_lr(monkeypatch):
    refs = []
    for i, ratio in enumerate((1.0, 1.5, 2.0, 3.0, 4.0, 8.0)):
        rt, ry, _ = _lr_sweep_run(ratio, TOTAL, seed=30 + i)
        refs.append(ReferenceRun(rt, ry, TOTAL, _constant_at(ratio), name=f"lr{ratio}"))
    t, y, truth = _lr_sweep_run(6.0, TOTAL // 2, seed=3)
    by_lr = forecast_trajectory(t, y, total_steps=TOTAL, schedule=_constant_at(6.0),
                                references=refs)
    monkeypatch.setattr(calibration_module, "LR_LINE_RUNS", 100)  # the replays' mean instead
    by_mean = forecast_trajectory(t, y, total_steps=TOTAL, schedule=_constant_at(6.0),
                                  references=refs)
    assert "a line in their peak lr" in by_lr.prior and "a line" not in by_mean.prior
    # The mean of the sweep's errors under-corrects the run with the second-largest drop.
    assert by_mean.final_mean / truth - 1 > 0.015
    assert abs(by_lr.final_mean / truth - 1) < 0.5 * (by_mean.final_mean / truth - 1)
    assert by_lr.final_lower <= truth <= by_lr.final_upper


def test_references_are_fitted_jointly_once_and_replayed_once_per_progress_step():
    refs = _late_drop_refs((2.4, 2.7, 3.0), seed=20, name="memo")
    t, y, _ = _late_drop_run(2.85, 4_000, seed=2)
    joints, replays = transfer.JOINTS.misses, trajectory._REPLAYS.misses
    alone = trajectory._ALONE.misses
    first = forecast_trajectory(t, y, total_steps=TOTAL, schedule=CONSTANT, references=refs)
    # The current fit plus one leave-one-out joint fit per reference; each reference replayed
    # with the others as priors, and alone (the forecast of the run alone that the result is
    # averaged with).
    assert transfer.JOINTS.misses - joints == 1 + len(refs)
    assert trajectory._REPLAYS.misses - replays == len(refs)
    assert trajectory._ALONE.misses - alone == len(refs)
    t2, y2, _ = _late_drop_run(2.85, 4_100, seed=2)  # the next batch: same 5% progress step
    again = forecast_trajectory(t2, y2, total_steps=TOTAL, schedule=CONSTANT, references=refs)
    assert transfer.JOINTS.misses - joints == 1 + len(refs)
    assert trajectory._REPLAYS.misses - replays == len(refs)
    assert again.status == first.status == "ready"
    # A changed reference is new data: refitted, never a stale hit.
    changed = [*refs[:-1], ReferenceRun(refs[-1].steps, refs[-1].values * 1.01, TOTAL,
                                        CONSTANT, name="memo2")]
    forecast_trajectory(t, y, total_steps=TOTAL, schedule=CONSTANT, references=changed)
    assert transfer.JOINTS.misses - joints > 1 + len(refs)
    # Replayed alone, a run depends on itself only: just the changed one is replayed again.
    assert trajectory._ALONE.misses - alone == len(refs) + 1


def test_a_provisional_forecast_replays_nothing_new_and_replay_ahead_then_does():
    refs = _late_drop_refs((2.4, 2.7, 3.0), seed=40, name="provisional")
    t, y, truth = _late_drop_run(2.85, 4_000, seed=4)
    args = {"total_steps": TOTAL, "schedule": CONSTANT, "references": refs}
    replays = trajectory._REPLAYS.misses
    # Nothing replayed at or before 40%: shown at once, uses the finished runs, replays none.
    first = forecast_trajectory(t, y, provisional_ok=True, **args)
    assert first.provisional and trajectory._REPLAYS.misses == replays
    assert "replays that calibrate it are not made yet" in first.prior
    assert "calibrated on" not in first.prior and "from 3 finished runs" in first.prior
    while not trajectory.replay_ahead(t, y, **args):
        pass
    replays, alone = trajectory._REPLAYS.misses, trajectory._ALONE.misses
    assert replays > 0
    assert not forecast_trajectory(t, y, provisional_ok=True, **args).provisional
    t2, y2, _ = _late_drop_run(2.85, 4_600, seed=4)  # the 45% step
    quick = forecast_trajectory(t2, y2, provisional_ok=True, **args)
    assert quick.provisional and trajectory._REPLAYS.misses == replays
    assert "as at 40% of this run" in quick.prior and "calibrated on 3" in quick.prior
    assert quick.final_lower <= truth <= quick.final_upper
    # One replay a call: six in all (3 with priors, 3 alone); the last call says so.
    made = [trajectory.replay_ahead(t2, y2, **args) for _ in range(6)]
    assert made == [False] * 5 + [True]
    assert (trajectory._REPLAYS.misses, trajectory._ALONE.misses) == (replays + 3, alone + 3)
    ready = forecast_trajectory(t2, y2, provisional_ok=True, **args)
    assert not ready.provisional and trajectory._REPLAYS.misses == replays + 3
    full = forecast_trajectory(t2, y2, **args)
    assert np.array_equal(ready.final_samples, full.final_samples)
    # Two steps on (the 50% step never replayed), it leans on the latest step replayed.
    t3, y3, _ = _late_drop_run(2.85, 5_600, seed=4)
    later = forecast_trajectory(t3, y3, provisional_ok=True, **args)
    assert later.provisional and trajectory._REPLAYS.misses == replays + 3
    assert "as at 45% of this run, the forecast made with them at 55% follows" in later.prior
    assert not trajectory.replay_ahead(t3, y3, **args)
    assert trajectory._REPLAYS.misses == replays + 4
    # More than LEAN_STEPS on, none is near enough: provisional again, not calibrated.
    t4, y4, _ = _late_drop_run(2.85, 4_600 + (trajectory.LEAN_STEPS + 1) * 500, seed=4)
    far = forecast_trajectory(t4, y4, provisional_ok=True, **args)
    assert far.provisional and "not made yet (none within 20% before 70%" in far.prior
    assert trajectory._REPLAYS.misses == replays + 4
    # With its replays run behind since then, batches up to LEAN_STEPS steps on are shown the
    # same way; further on, the forecast is made in full, which makes them.
    since = int(t4[-1])
    t5, y5, _ = _late_drop_run(2.85, since + trajectory.LEAN_STEPS * 500, seed=4)
    assert forecast_trajectory(t5, y5, provisional_ok=True, provisional_since=since,
                               **args).provisional
    t5, y5, _ = _late_drop_run(2.85, since + (trajectory.LEAN_STEPS + 1) * 500, seed=4)
    outrun = forecast_trajectory(t5, y5, provisional_ok=True, provisional_since=since, **args)
    assert not outrun.provisional and "calibrated on 3" in outrun.prior
    assert trajectory._REPLAYS.misses > replays + 4


def test_the_same_references_in_another_order_give_the_same_forecast_from_the_memo():
    # The service offers its finished runs latest first and a forecast ranks them by likeness:
    # the order must change neither the forecast nor what is memoised for that set.
    refs = _late_drop_refs((2.4, 2.7, 3.0), seed=30, name="order")
    t, y, _ = _late_drop_run(2.85, 4_000, seed=3)
    first = forecast_trajectory(t, y, total_steps=TOTAL, schedule=CONSTANT, references=refs)
    joints, replays = transfer.JOINTS.misses, trajectory._REPLAYS.misses
    again = forecast_trajectory(t, y, total_steps=TOTAL, schedule=CONSTANT,
                                references=refs[::-1])
    assert (transfer.JOINTS.misses, trajectory._REPLAYS.misses) == (joints, replays)
    assert np.array_equal(again.final_samples, first.final_samples)
    assert (again.final_lower, again.final_upper) == (first.final_lower, first.final_upper)


def _power_run(a: float, upto: int, seed: int) -> tuple[np.ndarray, np.ndarray, float]:
    t = np.arange(250, upto + 1, 50, dtype=float)

    def law(s: np.ndarray) -> np.ndarray:
        return power_law(s, 2.0, 3.0 * 1000**a, a)

    return t, noisy(law(t), 1e-3, np.random.default_rng(seed)), float(law(np.array([TOTAL]))[0])


def test_priors_that_misled_on_the_replays_give_way_to_the_run_alone(monkeypatch):
    # References of four different slopes: each, replayed with the others as its priors, is
    # forecast ~13% off; alone, ~2%. The run's forecast leans on its own curve accordingly.
    refs = []
    for i, a in enumerate((0.25, 0.45, 0.65, 0.85)):
        rt, ry, _ = _power_run(a, TOTAL, 30 + i)
        refs.append(ReferenceRun(rt, ry, TOTAL, CONSTANT, name=f"slope{a}"))
    t, y, truth = _power_run(0.55, 3_000, 3)
    averaged = forecast_trajectory(t, y, total_steps=TOTAL, schedule=CONSTANT, references=refs)
    replays = trajectory._replays
    monkeypatch.setattr(trajectory, "_replays", lambda refs, at, seed, *, priors:
                        replays(refs, at, seed, priors=True) if priors else ())
    priors = forecast_trajectory(t, y, total_steps=TOTAL, schedule=CONSTANT, references=refs)
    share = re.search(r"averaged \(in log\) with this run's curve forecast alone at (\d+)%",
                      averaged.prior)
    assert share and int(share.group(1)) >= 95 and "averaged" not in priors.prior
    # As accurate as the run alone replayed (~2%). Not compared with the priors' error on
    # this one run: their +-36% band can centre near the truth by chance (0.6% here).
    assert abs(averaged.final_mean / truth - 1) < 0.01
    assert averaged.final_lower <= truth <= averaged.final_upper
    width = averaged.final_upper - averaged.final_lower
    # Narrower by a third (0.67x; under 0.5x when all bands grew as h^0.5): the run's own band
    # sets it, grown for its extrapolation as a forecast from one curve alone is (h^0.7).
    assert width < 0.75 * (priors.final_upper - priors.final_lower)


def test_a_band_for_one_more_run_allows_for_how_few_runs_were_replayed():
    # The same +-2% errors measured on 3 runs or on 30: a band for the next run must be
    # wider on 3 (Student t with 2 degrees of freedom), about the rms itself on 30.
    rng = np.random.default_rng(3)
    for k, low, high in ((3, 1.9, 2.2), (30, 1.0, 1.1)):
        actual = list(2.0 + rng.random(k))
        err = 0.02 * np.where(np.arange(k) % 2, 1.0, -1.0)
        cal = calibration(_replays(actual, list(np.exp(err)), 0.001), actual)
        assert cal is not None
        assert low < cal.cap / cal.spread < high
        assert cal.scale > 10  # bands of +-0.1% for errors of 2%
        # As measured (the ways inside a decision pool): no allowance for how few they were.
        assert cal.widening(one_more_run=False) == (max(cal.ratio, 1.0), cal.spread)


def test_two_ways_that_disagree_are_averaged_for_the_forecast_and_pooled_for_a_stop():
    # With priors the run ends near 2.65, alone near 3.15 (a simulated sweep's best run, at
    # 10 %, ended at 2.85): the weighted average is one answer between them, the pool keeps
    # both. Against a reference at 2.76 the average alone would stop the run; the pool not.
    rng = np.random.default_rng(4)
    priors = 2.65 * np.exp(0.02 * rng.standard_normal((400, 3)))
    alone = 3.15 * np.exp(0.02 * rng.standard_normal((400, 3)))
    average = trajectory._average(priors, alone, 0.4, np.random.default_rng(5))[:, -1]
    pool = trajectory._mixture(priors, alone, 0.4, np.random.default_rng(5))[:, -1]
    assert abs(np.mean(np.log(average)) - (0.6 * np.log(2.65) + 0.4 * np.log(3.15))) < 0.005
    assert np.std(np.log(average)) < 0.02  # no wider than either way
    assert p_underperform(average, 2.76) > 0.9
    assert 0.3 < p_underperform(pool, 2.76) < 0.5


def test_stops_are_decided_on_the_pool_only_when_there_was_an_average():
    refs = []
    for i, a in enumerate((0.25, 0.45, 0.65, 0.85)):
        rt, ry, _ = _power_run(a, TOTAL, 30 + i)
        refs.append(ReferenceRun(rt, ry, TOTAL, CONSTANT, name=f"slope{a}"))
    t, y, _ = _power_run(0.55, 3_000, 3)
    cold = forecast_trajectory(t, y, total_steps=TOTAL, schedule=CONSTANT)
    assert np.array_equal(cold.decision_samples, cold.final_samples)
    warm = forecast_trajectory(t, y, total_steps=TOTAL, schedule=CONSTANT, references=refs)
    assert "averaged" in warm.prior
    assert not np.array_equal(np.sort(warm.decision_samples), np.sort(warm.final_samples))
