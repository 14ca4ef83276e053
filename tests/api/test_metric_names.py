"""Metrics as trainers and trackers name them: losses are forecast and the learning rate is
read whatever their names, so a user need not rename anything to get schedule-aware forecasts."""

import math

import pytest
from fastapi.testclient import TestClient

from backend.metrics.keys import is_loss_key, lr_key
from tests.waiting import poll

TOTAL = 2000


@pytest.mark.parametrize("key", ["loss", "train_loss", "val_loss", "eval_loss", "test_loss",
                                 "train/loss", "eval/loss", "val/loss", "valid_loss",
                                 "train_loss_step", "val_loss_epoch"])
def test_losses_are_recognised_by_their_usual_names(key):
    assert is_loss_key(key)


@pytest.mark.parametrize("key", ["aux_loss", "z_loss", "loss_scale", "accuracy", "lossy",
                                 "train/grad_norm", "loss_steps"])
def test_other_metrics_are_not_losses(key):
    assert not is_loss_key(key)


@pytest.mark.parametrize(("keys", "expected"), [
    ({"loss", "lr", "learning_rate"}, "lr"),
    ({"loss", "learning_rate"}, "learning_rate"),  # HF Trainer
    ({"train/loss", "train/learning_rate"}, "train/learning_rate"),  # its W&B callback
    ({"loss", "lr-AdamW"}, "lr-AdamW"),  # Lightning's LearningRateMonitor
    ({"optim/lr", "z/lr"}, "optim/lr"),  # stable: the first in sorted order
    ({"loss", "lr_warmup_steps", "clr"}, None),
])
def test_the_learning_rate_is_found_by_its_usual_names(keys, expected):
    assert lr_key(keys) == expected


def cosine_lr(step: int) -> float:
    warm = 100
    if step < warm:
        return 1e-3 * step / warm
    return 0.5e-3 * (1 + math.cos(math.pi * (step - warm) / (TOTAL - warm)))


def loss_at(step: int) -> float:
    # Falls with the lr area and drops further as the lr anneals (the shape a forecast of an
    # unknown schedule cannot see coming).
    area = sum(cosine_lr(s) for s in range(0, step + 1, 10)) * 10 / 1e-3
    return 2.0 + 4.0 * (area + 50) ** -0.3 - 0.2 * (1 - cosine_lr(step) / 1e-3) * (step > 100)


def log(client: TestClient, run_id: str, steps: range, loss_key: str, lr_key_: str) -> None:
    rows = [{"step": s, "values": {loss_key: loss_at(s), lr_key_: cosine_lr(s)}} for s in steps]
    client.post(f"/api/v1/runs/{run_id}/metrics", json={"rows": rows}).raise_for_status()


def forecast(client: TestClient, run_id: str, key: str, step: int) -> dict:
    return poll(lambda: client.get(f"/api/v1/runs/{run_id}/forecast/{key}").json(),
                lambda body: body.get("fitted_upto_step") == step, 120,
                f"no {key} forecast fitted up to {step}", every=0.05)


def test_a_run_logging_hf_trainer_names_gets_a_schedule_aware_forecast(client, make_run):
    run = make_run(total_steps=TOTAL)  # no lr_schedule: only the logged lr tells it
    log(client, run["id"], range(0, 801, 10), "train/loss", "train/learning_rate")
    fc = forecast(client, run["id"], "train/loss", 800)
    assert fc["status"] == "ready"
    assert "lr_annealing" in fc["model"]  # the schedule-free laws are power laws in steps
    rows = [{"step": 800, "values": {"train/grad_norm": 1.0}}]
    client.post(f"/api/v1/runs/{run['id']}/metrics", json={"rows": rows}).raise_for_status()
    other = client.get(f"/api/v1/runs/{run['id']}/forecast/train/grad_norm").json()
    assert other["status"] == "insufficient_data" and "forecast_metrics" in other["reason"]


def test_a_finished_run_that_only_logged_its_lr_is_a_prior_with_that_schedule(client,
                                                                             make_run):
    done = make_run(name="logged-lr-only", group="sweep", total_steps=TOTAL)
    log(client, done["id"], range(0, TOTAL + 1, 10), "loss", "learning_rate")
    forecast(client, done["id"], "loss", TOTAL)
    client.patch(f"/api/v1/runs/{done['id']}", json={"status": "finished"}).raise_for_status()
    spec = {"type": "cosine", "peak_lr": 1e-3, "warmup_steps": 100, "final_lr": 0.0}
    run = make_run(name="next", group="sweep", total_steps=TOTAL, lr_schedule=spec)
    log(client, run["id"], range(0, 601, 10), "loss", "learning_rate")
    fc = forecast(client, run["id"], "loss", 600)
    assert fc["status"] == "ready"
    assert "logged-lr-only" in (fc["prior"] or "")  # a reference of the same kind: scheduled
    truth = loss_at(TOTAL)
    assert fc["final"]["lower"] <= truth <= fc["final"]["upper"]


def test_a_key_listed_in_forecast_metrics_is_forecast_too(client, make_run):
    run = make_run(total_steps=TOTAL, config={"forecast_metrics": ["perplexity"]})
    log(client, run["id"], range(0, 801, 10), "perplexity", "lr")
    assert forecast(client, run["id"], "perplexity", 800)["status"] == "ready"
    # A string is not a list of keys (no substring match on "perplexity").
    other = make_run(total_steps=TOTAL, config={"forecast_metrics": "perplexity"})
    log(client, other["id"], range(0, 801, 10), "perplex", "lr")
    body = client.get(f"/api/v1/runs/{other['id']}/forecast/perplex").json()
    assert body["status"] == "insufficient_data" and "forecast_metrics" in body["reason"]
