"""Through the service: a sweep whose runs saw the same batches (one data order) gets the
finished runs' wiggle at the target step in the forecast of the value the run will log there."""

import numpy as np

from tests.api.test_metric_names import forecast

TOTAL = 2000
STEPS = np.arange(0, TOTAL + 1, 2)  # 1,001 points: more than the 500 references were read at
BATCHES = 0.02 * np.random.default_rng(0).standard_normal(len(STEPS))
BATCHES[-1] = -0.04  # easy batches at the last step: every run logs 4% under its line


def loss_of(level: float, seed: int) -> np.ndarray:
    """A run of the sweep: its level times the shared curve, the shared batches and its own."""
    own = 0.003 * np.random.default_rng(seed).standard_normal(len(STEPS))
    return level * (2.0 + 4.0 * (STEPS + 50.0) ** -0.3) * np.exp(BATCHES + own)


def log(client, run_id: str, values: np.ndarray, upto: int) -> None:
    rows = [{"step": int(s), "values": {"loss": float(v)}}
            for s, v in zip(STEPS, values, strict=True) if s <= upto]
    client.post(f"/api/v1/runs/{run_id}/metrics", json={"rows": rows}).raise_for_status()


def test_a_sweep_on_one_data_order_forecasts_the_logged_value_with_its_shared_wiggle(
        client, make_run):
    for i, level in enumerate((0.98, 1.0, 1.02)):
        done = make_run(name=f"seen-{i}", group="one-order", total_steps=TOTAL)
        log(client, done["id"], loss_of(level, i), TOTAL)
        client.patch(f"/api/v1/runs/{done['id']}", json={"status": "finished"}
                     ).raise_for_status()
    run = make_run(name="live", group="one-order", total_steps=TOTAL)
    values = loss_of(1.01, 9)
    log(client, run["id"], values, TOTAL // 2)
    fc = forecast(client, run["id"], "loss", TOTAL // 2)
    assert fc["status"] == "ready"
    assert "logged the same batches" in (fc["prior"] or ""), fc["prior"]
    truth = float(values[-1])
    assert fc["final"]["lower"] <= truth <= fc["final"]["upper"]
