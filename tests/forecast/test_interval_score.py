"""The score the forecast benches decide a change to the bands by (bench.curves_data)."""

import numpy as np
import pytest

from bench.curves_data import interval_score


def test_the_interval_score_charges_width_and_twenty_times_a_miss():
    assert interval_score(1.9, 2.1, 2.0) == pytest.approx(0.1)  # width 0.2 of 2.0, no miss
    # A band 0.1 below the truth: its width plus 2 / 0.1 times the miss.
    assert interval_score(1.8, 1.9, 2.0) == pytest.approx((0.1 + 20 * 0.1) / 2.0)
    assert np.isnan(interval_score(None, None, 2.0))  # no forecast, no score
