import numpy as np
import pytest

from workers.forecast.schedule import schedule_from_logged, schedule_from_spec

STEP_KNOTS = {"knots": [[0, 0.0], [10, 1.0], [20, 1.0], [20, 0.5], [30, 0.5]]}


def test_knots_interpolate_linearly_and_a_repeated_step_is_a_jump():
    s = schedule_from_spec(STEP_KNOTS)
    assert s.lr(np.array([0, 5, 10, 19, 20, 30])) == pytest.approx([0, 0.5, 1, 1, 0.5, 0.5])
    assert s.total_steps == 30


def test_forward_area_is_the_sum_of_lr_over_steps():
    s = schedule_from_spec(STEP_KNOTS)
    # 0.1 + ... + 1.0 = 5.5 over warmup; steps 11..19 at 1.0; step 20 already at 0.5
    assert s.forward_area(np.array([10, 20, 25])) == pytest.approx([5.5, 15.0, 17.5])


def test_annealing_area_accumulates_the_drop_with_momentum():
    s = schedule_from_spec(STEP_KNOTS)
    # drop 0.5 at step 20, lam 0.5: m = 0.5, 0.25, 0.125 -> S2 = 0.5, 0.75, 0.875
    got = s.annealing_area(np.array([19, 20, 21, 22]), lam=0.5)
    assert got == pytest.approx([0.0, 0.5, 0.75, 0.875])


def test_warmup_increase_is_not_counted_as_annealing():
    s = schedule_from_spec({"type": "constant", "peak_lr": 1.0, "warmup_steps": 10,
                            "total_steps": 50})
    assert s.annealing_area(np.array([5, 10, 50]), lam=0.9) == pytest.approx([0, 0, 0])


def test_multi_power_drop_design_holds_the_area_after_each_drop():
    d = schedule_from_spec(STEP_KNOTS).drop_design(np.array([15, 20, 25]))
    assert d.weight == pytest.approx([0.5])
    assert d.eta == pytest.approx([0.5])
    assert d.area[0] == pytest.approx([0.0, 0.5, 3.0])  # S_k(t) = sum of lr from k to t


@pytest.mark.parametrize(
    ("spec", "steps", "expected"),
    [
        ({"type": "cosine", "peak_lr": 1.0, "warmup_steps": 10, "total_steps": 110,
          "final_lr": 0.1}, [5, 10, 60, 110], [0.5, 1.0, 0.55, 0.1]),
        ({"type": "linear", "peak_lr": 1.0, "warmup_steps": 0, "total_steps": 100},
         [0, 50, 100], [1.0, 0.5, 0.0]),
        ({"type": "wsd", "peak_lr": 2.0, "warmup_steps": 10, "total_steps": 100,
          "decay_start": 80, "decay_shape": "sqrt"}, [50, 80, 85, 100], [2.0, 2.0, 1.0, 0.0]),
        ({"type": "inverse_sqrt", "peak_lr": 1.0, "warmup_steps": 100, "total_steps": 1000},
         [50, 100, 400], [0.5, 1.0, 0.5]),
    ],
)
def test_named_shapes_follow_their_formula(spec, steps, expected):
    assert schedule_from_spec(spec).lr(np.array(steps)) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"type": "cosine", "warmup_steps": 10, "total_steps": 100}, "peak_lr"),
        ({"type": "step", "peak_lr": 1.0, "total_steps": 100}, "type"),
        ({"type": "wsd", "peak_lr": 1.0, "total_steps": 100, "decay_shape": "cubic"},
         "decay_shape"),
        ({"type": "wsd", "peak_lr": 1.0, "total_steps": 100, "decay_start": 200}, "decay_start"),
        ({"type": "cosine", "peak_lr": 1.0, "total_steps": -5}, "total_steps"),
        ({"knots": [[10, 1.0], [5, 0.5]]}, "knots"),
        ({"knots": "fast"}, "knots"),
        ({"type": "cosine", "peak_lr": "0.1", "total_steps": 100}, "peak_lr"),
        ({"type": "cosine", "peak_lr": True, "total_steps": 100}, "peak_lr"),
        # jsonb gives 1e400-style numbers back as ints of hundreds of digits.
        ({"type": "cosine", "peak_lr": 10**400, "total_steps": 100}, "peak_lr"),
    ],
)
def test_bad_spec_raises_value_error_naming_the_field(spec, field):
    with pytest.raises(ValueError, match=field):
        schedule_from_spec(spec)


def test_logged_lr_is_followed_by_the_plan_beyond_the_last_log():
    plan = schedule_from_spec({"type": "linear", "peak_lr": 1.0, "total_steps": 100})
    s = schedule_from_logged(np.array([0, 10, 20]), np.array([0.3, 0.3, 0.3]), plan, 100)
    assert s.lr(np.array([10, 20, 60])) == pytest.approx([0.3, 0.3, 0.4])
    held = schedule_from_logged(np.array([0, 10]), np.array([0.3, 0.2]), None, 100)
    assert held.lr(np.array([50])) == pytest.approx([0.2])


def test_a_large_number_read_back_from_jsonb_as_an_int_is_a_number():
    """Postgres stores 1e308 in a jsonb as numeric and gives it back as a 309-digit int."""
    sched = schedule_from_spec({"type": "constant", "peak_lr": 10**308, "total_steps": 100})
    assert sched.lr(np.array([50.0]))[0] == 1e308
