from functools import partial

import numpy as np
import pytest

from backend.forecasts.service import interval_sd
from bench.curves_data import LUO, TINYLM, TINYLM_SCHED, DevRun, load_curves, logged_lr
from workers.forecast.schedule import schedule_from_spec
from workers.forecast.stopping import (
    decide,
    judge,
    p_underperform,
    paired_p_underperform,
    should_stop,
)
from workers.forecast.trajectory import ReferenceRun, forecast_trajectory


def test_p_underperform_counts_draws_worse_than_reference():
    draws = np.array([2.9, 3.0, 3.1, 3.2])
    assert p_underperform(draws, 3.05, "min") == pytest.approx(0.5)
    assert p_underperform(draws, 3.15, "max") == pytest.approx(0.75)


def test_p_underperform_ignores_nonfinite_draws_and_rejects_bad_mode():
    assert p_underperform(np.array([np.nan, 3.0]), 2.0) == 1.0
    assert np.isnan(p_underperform(np.array([np.nan]), 2.0))
    with pytest.raises(ValueError, match="mode"):
        p_underperform(np.array([1.0]), 1.0, "median")


def test_should_stop_needs_confidence_and_progress():
    assert should_stop(0.95, 0.9, progress=0.5, min_progress=0.1)
    assert not should_stop(0.95, 0.9, progress=0.05, min_progress=0.1)
    assert not should_stop(0.5, 0.9, progress=0.5, min_progress=0.1)
    assert not should_stop(float("nan"), 0.9, progress=0.5, min_progress=0.1)


def test_an_uncertain_reference_keeps_a_near_tie_from_stopping_a_run():
    draws = np.random.default_rng(0).normal(3.003, 0.001, 400)  # surely above 3.000...
    assert p_underperform(draws, 3.0, "min") > 0.99
    # ...but the bar is a finished run's fitted final value, known to +-0.005 (sd)
    near = p_underperform(draws, 3.0, "min", reference_sd=0.005)
    assert 0.6 < near < 0.8
    far = p_underperform(draws + 0.05, 3.0, "min", reference_sd=0.005)
    assert far > 0.99
    assert p_underperform(draws, 3.0, "max", reference_sd=0.005) == pytest.approx(1 - near)


def _luo(name: str) -> DevRun:
    return _tinylm(name, LUO)


def _tinylm(name: str, source=TINYLM) -> DevRun:
    return next(r for r in load_curves(source) if r.run_id == name)


def _finished(run: DevRun) -> tuple[ReferenceRun, float, float]:
    """A finished run as a reference: its data, fitted final value and that value's sd."""
    sched = schedule_from_spec(run.lr_spec)
    fc = forecast_trajectory(run.steps, run.loss, total_steps=run.target_step, schedule=sched)
    sd = interval_sd(fc.final_lower, fc.final_upper, fc.level)
    return ReferenceRun(run.steps, run.loss, run.target_step, sched, run.run_id), fc.final_mean, sd


def _cut(run: DevRun, frac: float, refs: list[ReferenceRun]):
    """The run's first ``frac`` of steps, its schedule, and their forecast with ``refs``."""
    steps, loss = run.prefix(frac)
    sched = schedule_from_spec(run.lr_spec)
    fc = forecast_trajectory(steps, loss, total_steps=run.target_step, schedule=sched,
                             references=refs)
    return steps, loss, sched, fc


def _better_run_cut(finished: DevRun, run: DevRun, frac: float):
    """``finished`` as the only reference, and ``run``, which truly ends better than it, cut
    at ``frac`` and forecast: (reference, its fitted final value, that value's sd, and what
    _cut returns)."""
    ref, value, sd = _finished(finished)
    assert run.truth < value
    return (ref, value, sd, *_cut(run, frac, [ref]))


def test_the_paired_check_keeps_the_eventual_best_of_a_real_lr_sweep_running():
    # Two real runs of bench/data/tinylm (one model, constant lr): 0.0079 finished at 1.566,
    # 0.0032 ends better (1.550) but learns more slowly. At 35% of its steps, forecast with
    # the finished run as its reference, it looks surely worse (the floor laws flatten a
    # curve that keeps its slope): the plain test would stop the sweep's best run.
    run = _tinylm("d64_constant_lr0.0032")
    ref, value, sd, steps, loss, sched, fc = _better_run_cut(
        _tinylm("d64_constant_lr0.0079"), run, 0.35)
    p_level = p_underperform(fc.checked_samples, value, "min", sd)
    assert p_level >= 0.9
    # The band shown, widened by the one finished run's replay, doubts it already.
    assert p_underperform(fc.final_samples, value, "min", sd) < p_level
    # The finished run forecast at the same progress was wrong the same way: no stop.
    paired = paired_p_underperform(steps, loss, total_steps=run.target_step, schedule=sched,
                                   reference=ref, reference_value=value, others=[],
                                   reference_sd=sd)
    assert paired < 0.9
    # A run that does end far worse (peak lr 0.05: 2.66) is still told apart at 25%.
    bad = _tinylm("d64_constant_lr0.05")
    steps, loss = bad.prefix(0.25)
    assert paired_p_underperform(steps, loss, total_steps=bad.target_step,
                                 schedule=schedule_from_spec(bad.lr_spec), reference=ref,
                                 reference_value=value, others=[], reference_sd=sd) > 0.99


def test_the_paired_check_declines_runs_of_another_schedule_shape():
    ref, value, sd = _finished(_tinylm("d64_constant_lr0.0079"))
    run = _tinylm("d64_cosine_lr0.0079")
    steps, loss = run.prefix(0.5)
    assert np.isnan(paired_p_underperform(
        steps, loss, total_steps=run.target_step, schedule=schedule_from_spec(run.lr_spec),
        reference=ref, reference_value=value, others=[], reference_sd=sd))


def test_decide_consults_the_paired_check_only_for_a_stop_and_lets_it_veto():
    asked = []

    def paired(p: float):
        return lambda: asked.append(p) or p

    keep = decide(0.5, 0.9, progress=0.5, min_progress=0.1, paired=paired(0.99))
    assert (keep.stop, asked) == (False, [])  # the forecast alone says go on: no extra fits
    vetoed = decide(0.97, 0.9, progress=0.5, min_progress=0.1, paired=paired(0.6))
    assert (vetoed.stop, vetoed.p, vetoed.p_forecast, vetoed.p_paired) == (False, 0.6, 0.97, 0.6)
    both = decide(0.97, 0.9, progress=0.5, min_progress=0.1, paired=paired(0.95))
    assert (both.stop, both.p) == (True, 0.95)
    # Runs that cannot be paired (another schedule shape) are decided on the forecast alone.
    alone = decide(0.97, 0.9, progress=0.5, min_progress=0.1, paired=paired(float("nan")))
    assert alone.stop and alone.p == 0.97
    assert decide(0.97, 0.9, progress=0.5, min_progress=0.1).stop  # a target: nothing to pair


def test_a_run_of_the_same_shape_checks_a_forecast_in_place_of_an_even_pool():
    # An even pool (too few finished runs to replay) says go on (0.6) where the forecast's own
    # draws say stop (0.97): a reference of the run's shape confirms those draws (0.95)...
    kw = {"progress": 0.5, "min_progress": 0.1}
    checked = decide(0.6, 0.9, **kw, paired=lambda: 0.95, p_level=0.97)
    assert (checked.stop, checked.p, checked.p_forecast, checked.on_level) == (
        True, 0.95, 0.97, True)
    assert not decide(0.6, 0.9, **kw, paired=lambda: 0.7, p_level=0.97).stop  # ...or vetoes
    # A reference of another shape cannot check them: the pool stands, either way.
    unpaired = decide(0.6, 0.9, **kw, paired=lambda: float("nan"), p_level=0.97)
    assert (unpaired.stop, unpaired.p, unpaired.on_level) == (False, 0.6, False)
    assert decide(0.95, 0.9, **kw, paired=lambda: float("nan"), p_level=0.8).stop
    # A target value: no run to check with, the pool decides.
    assert not decide(0.6, 0.9, **kw, p_level=0.97).stop


def test_a_guessed_cooldown_does_not_stop_the_best_run_of_a_real_wsd_sweep():
    # Two real WSD runs of bench/data/tinylm_sched (d128, peak lr 3.15e-3): the 10% (1 - sqrt)
    # cooldown finished at 1.3345; the 40% linear one ends better (1.327) but at 25% of its
    # steps its cooldown is all ahead. One finished run does not pin a drop's size down, so the
    # forecast prices it by the default prior, too small here: the run looks surely worse, and
    # the schedules differ, so there is no paired check to say otherwise.
    run = _tinylm("d128_wsd_linear40_lr0.0032", TINYLM_SCHED)
    ref, value, sd, steps, loss, sched, fc = _better_run_cut(
        _tinylm("d128_wsd_sqrt10_lr0.0032", TINYLM_SCHED), run, 0.25)
    p = p_underperform(fc.decision_samples, value, "min", sd)
    assert p >= 0.9 and fc.decay_guessed
    paired = paired_p_underperform(steps, loss, total_steps=run.target_step, schedule=sched,
                                   reference=ref, reference_value=value, others=[],
                                   reference_sd=sd)
    assert np.isnan(paired)
    assert not decide(p, 0.9, 0.25, 0.1, lambda: paired, fc.decay_guessed).stop
    assert decide(p, 0.9, 0.25, 0.1, lambda: paired, lr_guessed=False).stop
    # A guess confirmed by the paired check still stops; nothing is guessed once no decay is
    # ahead (the finished reference, forecast at its end).
    assert decide(p, 0.9, 0.25, 0.1, lambda: 0.95, fc.decay_guessed).stop
    assert decide(p, 0.9, 0.25, 0.1, None, fc.decay_guessed).stop  # a target: no run to pair
    # ...so judged against the same value as a target, the stop must hold with the guess's
    # largest known error, which it does not; a target the run misses by far still stops it.
    target = judge(fc, value, "min", 0.0, 0.9, 0.25, 0.1)
    assert not target.stop and target.p >= 0.9  # still predicted to miss it
    assert judge(fc, 0.8 * value, "min", 0.0, 0.9, 0.25, 0.1).stop
    assert not forecast_trajectory(ref.steps, ref.values, total_steps=ref.total_steps,
                                   schedule=ref.schedule).decay_guessed


def _logged_cut(run: DevRun, frac: float, ref: ReferenceRun, value: float, sd: float):
    """``run`` cut at ``frac`` as a loop that logs its lr and gives no lr_schedule, forecast
    and judged against the finished ``ref`` (value, sd) with the paired check."""
    steps, loss = run.prefix(frac)
    lr_steps, lr = logged_lr(run.lr_spec, steps)
    fc = forecast_trajectory(steps, loss, total_steps=run.target_step, lr_steps=lr_steps,
                             lr_values=lr, references=[ref])
    paired = partial(paired_p_underperform, steps, loss, total_steps=run.target_step,
                     schedule=None, reference=ref, reference_value=value, others=[],
                     reference_sd=sd, lr_steps=lr_steps, lr_values=lr)
    return fc, judge(fc, value, "min", sd, 0.9, frac, 0.1, paired)


@pytest.mark.parametrize(("name", "finished", "source"), [
    ("d128_wsd_linear40_lr0.0032", "d128_wsd_sqrt10_lr0.0032", TINYLM_SCHED),
    ("400M_wsd_20000_24000", "400M_cosine_24000", LUO),
    ("25M_wsd_20000_24000", "25M_cosine_24000", LUO),
])
def test_a_wsd_run_without_a_plan_is_not_stopped_for_the_cooldown_it_cannot_see(
        name, finished, source):
    # A loop that logs its lr and gives no lr_schedule, in its stable phase: nothing to read a
    # plan off, so the forecast holds the lr and leaves out the cooldown that makes this run
    # end better than the finished one. Its forecast says surely worse (p 0.95-1.00 at 25 %).
    run = _tinylm(name, source)
    ref, value, sd = _finished(_tinylm(finished, source))
    assert run.truth < value
    fc, d = _logged_cut(run, 0.25, ref, value, sd)
    assert fc.lr_held and not fc.decay_guessed and d.p_forecast >= 0.9
    assert np.isnan(d.p_paired)  # the held lr is not the finished run's shape: no pair
    assert not d.stop
    assert decide(d.p, 0.9, 0.25, 0.1, lambda: d.p_paired, lr_guessed=False).stop  # unguarded


def test_a_run_without_a_plan_is_still_stopped_when_the_paired_check_confirms_it():
    # Constant lr, logged, no plan, against a finished constant-lr run of the same sweep
    # (bench/data/tinylm d64, lr 0.0032 ends at 1.55): the shapes match, so the check can
    # confirm the held forecast. lr 0.05 (ends at 2.66) is stopped at 25 %; lr 0.02 (1.62),
    # which the forecast alone would stop, the check holds.
    ref, value, sd = _finished(_tinylm("d64_constant_lr0.0032"))
    fc, d = _logged_cut(_tinylm("d64_constant_lr0.05"), 0.25, ref, value, sd)
    assert fc.lr_held and d.p_paired >= 0.9 and d.stop
    fc, d = _logged_cut(_tinylm("d64_constant_lr0.02"), 0.25, ref, value, sd)
    assert d.p_forecast >= 0.9 and d.p_paired < 0.9 and not d.stop


def test_with_one_finished_run_of_another_shape_a_stop_needs_the_curve_alone_to_agree():
    # Luo et al.'s 400M runs of 24,000 steps: the cosine run finished at 2.739; the WSD run
    # (cooldown from 20,000) ends better, 2.722. At 20% of its steps, with the cosine run as its
    # only reference, the law transferred from it barely pins the cooldown's drop down and
    # forecasts 2.80 [2.71, 2.82]; one run replayed (with no reference left) widens the band
    # shown but cannot calibrate it, and the shapes differ, so there is no paired check
    # either. The forecast's own draws would stop the sweep's best run (bench.early_stopping,
    # 6 start orders); the draws a stop is decided on pool them evenly with this curve's
    # forecast alone, which prices the drop by the default prior.
    run = _luo("400M_wsd_20000_24000")
    ref, value, sd, steps, loss, sched, fc = _better_run_cut(_luo("400M_cosine_24000"), run,
                                                             0.2)
    assert p_underperform(fc.checked_samples, value, "min", sd) >= 0.9
    assert fc.decision_of == "pool" and not fc.decay_guessed
    alone = forecast_trajectory(steps, loss, total_steps=run.target_step, schedule=sched)
    assert p_underperform(alone.final_samples, value, "min", sd) < 0.5
    assert fc.even_pool and p_underperform(fc.decision_samples, value, "min", sd) < 0.9
    assert not judge(fc, value, "min", sd, 0.9, 0.2, 0.1, lambda: float("nan")).stop
    # The constant-lr run of the same sweep (2.817) is still stopped, at 20% of its steps.
    bad = _luo("400M_constant_24000")
    worse = _cut(bad, 0.2, [ref])[3]
    assert worse.decision_of == "pool"
    assert judge(worse, value, "min", sd, 0.9, 0.2, 0.1, lambda: float("nan")).stop
