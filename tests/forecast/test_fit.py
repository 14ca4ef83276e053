import numpy as np
import pytest

from tests.forecast.synthetic import TRUE, annealing_curve, noisy, wsd
from workers.forecast.fit import Prior, bootstrap, fit_law, holdout_weights
from workers.forecast.guesses import LAMBDAS, starts
from workers.forecast.laws import (
    LAWS,
    Design,
    multi_power,
    multi_power_drop,
    power_law,
    shifted_power_law,
)
from workers.forecast.schedule import schedule_from_spec


def _fit(name, design, y, sigma=1e-3, span=0.0):
    w = np.ones_like(y)
    return fit_law(LAWS[name], design, y, w, starts(name, design.steps, span), sigma)


def _areas(sched, steps):
    s1 = sched.forward_area(steps, sched.total_steps) / 1e-3
    s2 = {round(lam, 6): sched.annealing_area(steps, lam, sched.total_steps) / 1e-3
          for lam in LAMBDAS}
    return s1, s2


def test_power_law_parameters_are_recovered_from_noisy_data():
    rng = np.random.default_rng(1)
    t = np.linspace(100, 10_000, 120)
    y = noisy(power_law(t, 2.0, 30.0, 0.5), 1e-3, rng)
    p = _fit("power_law", Design(t), y).params
    assert p["a"] == pytest.approx(0.5, rel=0.1)
    assert p["E"] == pytest.approx(2.0, rel=0.02)


def test_shifted_power_law_parameters_are_recovered():
    rng = np.random.default_rng(2)
    t = np.linspace(50, 20_000, 150)
    y = noisy(shifted_power_law(t, 1.5, 20.0, 0.6, 300.0), 5e-4, rng)
    p = _fit("shifted_power_law", Design(t), y).params
    assert p["a"] == pytest.approx(0.6, rel=0.15)
    assert p["E"] == pytest.approx(1.5, rel=0.02)


def test_lr_annealing_parameters_are_recovered_from_a_wsd_curve():
    sched = wsd(20_000, 14_000)
    t = np.linspace(300, 20_000, 150)
    y = noisy(annealing_curve(sched, t), 5e-4, np.random.default_rng(3))
    s1, s2 = _areas(sched, t)
    p = _fit("lr_annealing", Design(t, s1, s2), y).params
    assert p["alpha"] == pytest.approx(TRUE["alpha"], rel=0.15)
    assert p["D"] == pytest.approx(TRUE["D"], rel=0.15)
    assert p["lam"] == TRUE["lam"]


def test_multi_power_parameters_are_recovered_from_two_step_curves():
    # Two runs, different drops (as the law is usually fitted): shared shape, per-run design.
    truth = {"L0": 2.0, "A": 3.0, "alpha": 0.4, "B": 0.3, "C": 0.05, "beta": 0.6, "gamma": 0.5}
    t = np.linspace(300, 16_000, 100)
    rng = np.random.default_rng(4)
    ys, s1s, drops = [], [], []
    for low in (0.3, 0.1):
        sched = schedule_from_spec({"knots": [[0, 0], [200, 1e-3], [8000, 1e-3],
                                              [8000, low * 1e-3], [16000, low * 1e-3]]})
        s1 = sched.forward_area(t) / 1e-3
        d = sched.drop_design(t, 1e3)
        ys.append(noisy(multi_power(s1, d, **truth), 3e-4, rng))
        s1s.append(s1)
        drops.append(d)
    design = Design(np.concatenate([t, t]), np.concatenate(s1s), None, tuple(drops))
    y = np.concatenate(ys)
    p = _fit("multi_power", design, y, sigma=3e-4, span=500.0).params
    assert p["B"] == pytest.approx(truth["B"], rel=0.25)
    assert p["alpha"] == pytest.approx(truth["alpha"], rel=0.2)
    pred = LAWS["multi_power"].basis(np.array([p[k] for k in ("alpha", "log_C", "beta", "gamma")]),
                                     design) @ np.array([p["L0"], p["A"], p["B"]])
    assert np.max(np.abs(pred / y - 1)) < 3e-3


def test_the_drops_of_several_runs_are_computed_at_once_as_run_by_run():
    # A joint fit's design holds one DropDesign per run: a cosine run (32 groups), a run whose
    # step decay is ahead (no decrease yet) and a WSD run, of different lengths.
    t = np.linspace(100, 8_000, 40)
    specs = [{"type": "cosine", "peak_lr": 1e-3, "warmup_steps": 100, "total_steps": 8_000},
             {"knots": [[0, 0], [100, 1e-3], [9_000, 1e-3], [9_000, 1e-4], [10_000, 1e-4]]},
             {"type": "wsd", "peak_lr": 2e-3, "warmup_steps": 100, "total_steps": 6_000,
              "decay_start": 5_000}]
    drops = tuple(schedule_from_spec(spec).drop_design(t[: 30 + 5 * i], 1e3)
                  for i, spec in enumerate(specs))
    assert drops[1].weight.size == 0 and drops[0].weight.size > 8
    packed = Design(t, None, None, drops).packed_drops.drop(0.05, 0.6, 0.5)
    by_run = np.concatenate([multi_power_drop(d, 0.05, 0.6, 0.5) for d in drops])
    assert packed.shape == by_run.shape and np.any(by_run > 0)
    np.testing.assert_allclose(packed, by_run, rtol=1e-12, atol=1e-15)


def test_huber_fit_ignores_a_loss_spike():
    t = np.linspace(100, 10_000, 100)
    y = power_law(t, 2.0, 30.0, 0.5)
    y[60] *= 1.5  # one spike
    p = _fit("power_law", Design(t), y, sigma=1e-4).params
    assert p["E"] == pytest.approx(2.0, rel=1e-3)


def test_prior_pins_a_coefficient_the_data_cannot_identify():
    sched = wsd(20_000, 16_000)
    t = np.linspace(300, 12_000, 80)  # before the cooldown: D is invisible in the data
    y = annealing_curve(sched, t)
    s1, s2 = _areas(sched, t)
    prior = Prior(np.array([[0.0, 0.0, 1.0]]), np.array([0.05]), np.array([0.01]))
    f = fit_law(LAWS["lr_annealing"], Design(t, s1, s2), y, np.ones_like(y),
                starts("lr_annealing", t), 1e-4, prior)
    assert f.params["D"] == pytest.approx(0.05, rel=0.05)


def test_bootstrap_is_seeded_and_spreads_around_the_fit():
    rng = np.random.default_rng(5)
    t = np.linspace(100, 5_000, 80)
    y = noisy(power_law(t, 2.0, 30.0, 0.5), 2e-3, rng)
    f = _fit("power_law", Design(t), y, sigma=2e-3)
    pred = Design(np.array([20_000.0]))
    a = bootstrap(f, Design(t), y, pred, 200, np.random.default_rng(0))
    b = bootstrap(f, Design(t), y, pred, 200, np.random.default_rng(0))
    assert np.array_equal(a, b)
    assert a.std() > 0
    assert np.median(a) == pytest.approx(f.predict(pred)[0], rel=5e-3)


def test_holdout_weights_favour_the_law_that_predicts_the_tail():
    w = holdout_weights({"good": 0.001, "ok": 0.002, "bad": 0.01, "broken": float("nan")})
    assert set(w) == {"good", "ok"}
    assert w["good"] == pytest.approx(0.8)
