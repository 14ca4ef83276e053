"""Hyperparameter laws: sweep optima between grid points, power-law recovery, degenerate sweeps."""

from __future__ import annotations

import json

import numpy as np
import pytest

from workers.forecast.scaling_hparams import HparamLaw, fit_hparam_law, sweep_optimum


def test_sweep_optimum_finds_the_vertex_between_grid_values_of_a_noisy_quadratic():
    rng = np.random.default_rng(0)
    lrs = np.geomspace(1e-4, 1e-2, 9)
    true_opt = 1.3e-3  # between grid values 1.0e-3 and 1.78e-3
    loss = 3.0 + 0.05 * (np.log(lrs) - np.log(true_opt)) ** 2 + rng.normal(0, 0.002, 9)
    out = sweep_optimum(lrs, loss)
    assert out["status"] == "ready"
    assert out["optimum"] == pytest.approx(true_opt, rel=0.1)
    assert out["optimum"] not in lrs
    assert out["loss"] == pytest.approx(3.0, abs=0.005)


def test_sweep_ignores_diverged_runs():
    lrs = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2]
    loss = [3.3, 3.1, 3.05, 3.12, float("nan")]
    out = sweep_optimum(lrs, loss)
    assert out["status"] == "ready" and out["n_points"] == 4
    assert 3e-4 < out["optimum"] < 3e-3


def test_sweep_with_best_value_at_its_edge_says_the_optimum_is_only_bounded():
    out = sweep_optimum([1e-4, 3e-4, 1e-3, 3e-3], [3.4, 3.3, 3.2, 3.1])
    assert out["status"] == "edge" and "largest" in out["reason"]
    assert out["optimum"] == 3e-3


def test_sweep_of_two_values_is_insufficient():
    assert sweep_optimum([1e-3, 2e-3], [3.0, 3.1])["status"] == "insufficient_data"


def _lr_points(noise: float, seed: int = 0) -> list[tuple[float, float, float]]:
    rng = np.random.default_rng(seed)
    pts = []
    for n in np.geomspace(5e7, 2e9, 5):
        for ratio in (10, 40, 160):
            d = n * ratio
            eta = 1.79 * n**-0.713 * d**0.307 * np.exp(rng.normal(0, noise))
            pts.append((n, d, eta))
    return pts


def test_learning_rate_law_recovers_exponents_in_n_and_d():
    """Exponents of the form published in Predictable Scale (eta* = 1.79 N^-0.713 D^0.307)."""
    law = fit_hparam_law(_lr_points(noise=0.05), level=0.9)
    assert law.status == "ready"
    assert law.params["b_params"] == pytest.approx(-0.713, abs=0.06)
    assert law.params["c_tokens"] == pytest.approx(0.307, abs=0.06)
    mean, lo, hi = law.predict(7e9, 1.4e11)
    truth = 1.79 * 7e9**-0.713 * 1.4e11**0.307
    assert lo < truth < hi and lo < mean < hi


def test_hparam_intervals_cover_about_as_often_as_their_level():
    """50 seeded replicates at level 0.9; the binomial 99% range is about 39 to 49."""
    hits_exponent = hits_prediction = 0
    truth = 1.79 * 7e9**-0.713 * 1.4e11**0.307
    for seed in range(50):
        law = fit_hparam_law(_lr_points(noise=0.05, seed=seed), level=0.9)
        lo, hi = law.intervals["b_params"]
        hits_exponent += lo < -0.713 < hi
        _, lo, hi = law.predict(7e9, 1.4e11)
        hits_prediction += lo < truth * np.exp(np.random.default_rng(seed).normal(0, 0.05)) < hi
    assert 39 <= hits_exponent <= 49
    assert 39 <= hits_prediction <= 49


def test_batch_size_law_in_tokens_only():
    rng = np.random.default_rng(1)
    pts = [
        (1e9, d, 0.58 * d**0.571 * np.exp(rng.normal(0, 0.05))) for d in np.geomspace(1e9, 1e11, 6)
    ]
    law = fit_hparam_law(pts, uses=("tokens",))
    assert law.status == "ready" and "b_params" not in law.params
    assert law.params["c_tokens"] == pytest.approx(0.571, abs=0.05)


def test_sweeps_at_one_model_size_cannot_fit_an_n_exponent():
    pts = [(1e9, d, 1e-3 * (d / 1e10) ** 0.3) for d in (1e10, 2e10, 4e10, 8e10)]
    law = fit_hparam_law(pts)
    assert law.status == "degenerate" and "params" in law.reason
    assert fit_hparam_law(pts[:2], uses=("tokens",)).status == "insufficient_data"


def test_hparam_law_round_trips_through_json():
    law = fit_hparam_law(_lr_points(noise=0.05))
    restored = HparamLaw.from_dict(json.loads(json.dumps(law.to_dict())))
    assert restored.predict(3e9, 6e10) == law.predict(3e9, 6e10)
    assert restored.intervals == law.intervals
