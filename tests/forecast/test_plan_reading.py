"""Reading the lr plan off a logged lr: the decays trainers use are read, to total_steps, and
nothing else is."""

import pickle

import numpy as np
import pytest

from tests.forecast.synthetic import annealing_curve, noisy
from workers.forecast.plan_reading import read_plan
from workers.forecast.schedule import schedule_from_spec
from workers.forecast.trajectory import forecast_trajectory

TOTAL = 20_000
PEAK = 3e-4
BASE = {"peak_lr": PEAK, "warmup_steps": 300, "total_steps": TOTAL}


def _logged(spec: dict, upto: int, every: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """What a trainer logs: the schedule's lr at every ``every`` steps, in float32."""
    steps = np.arange(0, upto, every, dtype=float)
    return steps, schedule_from_spec(spec).lr(steps).astype(np.float32)


@pytest.mark.parametrize(("spec", "upto", "words"), [
    (BASE | {"type": "cosine"}, 3_000,
     "a cosine decay from its peak at step 300 to 0 at step 20,000"),
    (BASE | {"type": "cosine", "final_lr": PEAK / 10}, 3_000, "to 0.1x its peak"),
    (BASE | {"type": "linear"}, 1_000, "a linear decay"),
    (BASE | {"type": "wsd", "decay_start": 16_000, "decay_shape": "sqrt"}, 17_000,
     "a sqrt decay from its peak at step 16,000"),
    (BASE | {"type": "wsd", "decay_start": 8_000, "decay_shape": "exp", "final_lr": PEAK / 100},
     12_000, "an exp decay from its peak at step 8,000 to 0.01x its peak"),
    (BASE | {"type": "inverse_sqrt"}, 2_000, "an inverse-sqrt decay from its peak at step 300"),
])
def test_a_decay_under_way_is_read_with_the_lr_it_will_have_to_total_steps(spec, upto, words):
    steps, lr = _logged(spec, upto)
    plan = read_plan(steps, lr, TOTAL)
    assert plan is not None and words in plan.read_off_lr
    ahead = np.arange(upto, TOTAL + 1, 100.0)
    assert plan.lr(ahead) == pytest.approx(schedule_from_spec(spec).lr(ahead), abs=1e-4 * PEAK)
    again = pickle.loads(pickle.dumps(plan))  # the embedded server's fitting process gets it so
    assert again.read_off_lr == plan.read_off_lr
    assert again.lr(ahead) == pytest.approx(plan.lr(ahead))


@pytest.mark.parametrize(("spec", "upto"), [
    (BASE | {"type": "cosine"}, 250),  # still warming up
    (BASE | {"type": "cosine"}, 1_200),  # cosine fell 0.5 %: too little to tell
    (BASE | {"type": "constant"}, 10_000),
    (BASE | {"type": "wsd", "decay_start": 16_000}, 12_000),  # stable phase: nothing begun
    ({"knots": [[0, PEAK], [8_000, PEAK], [8_000, PEAK / 10], [TOTAL, PEAK / 10]],
      "total_steps": TOTAL}, 12_000),  # a step drop is none of the shapes
    (BASE | {"type": "cosine", "total_steps": 30_000}, 17_000),  # a decay ending elsewhere
])
def test_what_is_not_a_decay_to_total_steps_is_not_read(spec, upto):
    assert read_plan(*_logged(spec, upto), TOTAL) is None


def test_a_run_that_logs_a_cosine_lr_is_forecast_as_if_it_had_given_the_plan():
    sched = schedule_from_spec(BASE | {"type": "cosine"})
    t = np.arange(350, 6_001, 25, dtype=float)
    y = noisy(annealing_curve(sched, t), 3e-4, np.random.default_rng(0))
    truth = float(annealing_curve(sched, np.array([float(TOTAL)]))[0])
    lr_steps, lr = _logged(BASE | {"type": "cosine"}, 6_001)
    planned = forecast_trajectory(t, y, total_steps=TOTAL, schedule=sched)
    read = forecast_trajectory(t, y, total_steps=TOTAL, lr_steps=lr_steps, lr_values=lr)
    assert "a cosine decay" in read.reason and "lr is held" not in read.reason
    assert read.final_mean == pytest.approx(planned.final_mean, rel=1e-3)
    assert read.final_lower <= truth <= read.final_upper
