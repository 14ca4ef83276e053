import numpy as np
import pytest

from workers.forecast.stopping import p_underperform, should_stop


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
