"""Scaling-law and hyperparameter-law fits through the real API on Postgres: runs in, a fitted
law out, predictions with intervals, the frontier, clear statuses for inputs that cannot be
fitted, and the same auth scope as runs."""

import math
import uuid

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from backend.db import session_scope
from backend.models import Forecast, Project, ScalingFitRow
from backend.runs.service import create_key
from tests.waiting import poll
from workers.forecast.scaling_laws import LAWS

TRUE = {"E": 1.8, "A": 400.0, "B": 1100.0, "alpha": 0.34, "beta": 0.28}
LR_LAW = {"a": 0.2, "b": -0.3, "c": 0.1}  # lr* = a N^b D^c
LAST_STEP = 1000


def chinchilla(n: float, d: float) -> float:
    return TRUE["E"] + TRUE["A"] / n ** TRUE["alpha"] + TRUE["B"] / d ** TRUE["beta"]


def finished_run(client: TestClient, project: str, loss: float | str, *, metric: str = "val_loss",
                 **fields) -> str:
    """A run that logged `metric` up to LAST_STEP and finished there."""
    run = client.post("/api/v1/runs", json={"project": project, **fields})
    assert run.status_code == 201, run.text
    rid = run.json()["id"]
    rows = [{"step": 0, "values": {metric: 10.0}}, {"step": LAST_STEP, "values": {metric: loss}}]
    assert client.post(f"/api/v1/runs/{rid}/metrics", json={"rows": rows}).status_code == 200
    assert client.patch(f"/api/v1/runs/{rid}", json={"status": "finished"}).status_code == 200
    return rid


def settled(client: TestClient, fit_id: int, timeout: float = 240.0) -> dict:
    """The fit once its job has run (the client fixture runs jobs in-process)."""
    return poll(lambda: client.get(f"/api/v1/scaling-fits/{fit_id}").json(),
                lambda body: body["status"] != "pending", timeout,
                f"fit {fit_id} still pending", every=0.1)


def request_fit(client: TestClient, project: str, **body) -> dict:
    created = client.post(f"/api/v1/projects/{project}/scaling-fits",
                          json={"metric": "val_loss", **body})
    assert created.status_code == 201, created.text
    assert created.json()["status"] == "pending"
    return settled(client, created.json()["id"])


@pytest.fixture(scope="module")
def chinchilla_fit(client: TestClient) -> dict:
    """One chinchilla fit (the slow part of this file) over 20 runs from a known L(N, D),
    with 0.2% seeded noise, half of them giving D as tokens_per_step x steps, next to runs
    the selector or the fit must leave out."""
    project = f"p-{uuid.uuid4().hex[:12]}"
    rng = np.random.default_rng(7)
    for i, n in enumerate([2e7, 5e7, 1e8, 2e8, 4e8]):
        for ratio in (5, 10, 20, 40):
            d = n * ratio
            loss = chinchilla(n, d) * math.exp(rng.normal(0, 0.002))
            size = {"tokens": d} if i % 2 else {"tokens_per_step": d / LAST_STEP}
            finished_run(client, project, loss, group="grid", tags=["sweep"], params=n, **size)
    finished_run(client, project, 3.0, group="grid", tags=["sweep"], tokens=1e9)  # no params
    finished_run(client, project, 9.9, group="other", tags=["sweep"], params=1e8, tokens=1e9)
    finished_run(client, project, 9.9, group="grid", params=1e8, tokens=1e9)  # lacks the tag
    client.post("/api/v1/runs", json={"project": project, "group": "grid", "tags": ["sweep"],
                                      "params": 1e8, "tokens": 2e9})  # still running
    fit = request_fit(client, project, law="chinchilla",
                      runs={"group": "grid", "tags": ["sweep"]})
    return fit


def test_chinchilla_fit_recovers_the_known_law_from_its_runs(chinchilla_fit):
    fit = chinchilla_fit
    assert fit["status"] == "ready", fit["reason"]
    assert fit["n_runs"] == 20 and len(fit["inputs"]) == 20
    p = fit["params"]
    assert p["E"] == pytest.approx(TRUE["E"], rel=0.1)
    assert p["alpha"] == pytest.approx(TRUE["alpha"], abs=0.05)
    assert p["beta"] == pytest.approx(TRUE["beta"], abs=0.05)
    assert set(fit["intervals"]) == set(p) and fit["level"] == 0.9
    for lower, upper in fit["intervals"].values():
        assert lower <= upper
    # D from tokens_per_step x the steps trained equals the declared D.
    for point in fit["inputs"]:
        assert point["tokens"] / point["params"] == pytest.approx(
            round(point["tokens"] / point["params"]), rel=1e-9)
        assert point["source"] == "final"


def test_runs_left_out_are_counted_in_the_reason(chinchilla_fit):
    reason = chinchilla_fit["reason"]
    assert "1 without params" in reason and "1 running (not finished)" in reason
    assert chinchilla_fit["runs"] == {"group": "grid", "tags": ["sweep"]}


def test_a_held_out_larger_run_is_predicted_inside_its_interval(client, chinchilla_fit):
    n, d = 1e9, 2e10
    r = client.post(f"/api/v1/scaling-fits/{chinchilla_fit['id']}/predict",
                    json={"params": n, "tokens": d})
    assert r.status_code == 200, r.text
    pred = r.json()
    assert pred["quantity"] == "val_loss" and pred["level"] == 0.9
    assert pred["lower"] <= chinchilla(n, d) <= pred["upper"]
    assert pred["mean"] == pytest.approx(chinchilla(n, d), rel=0.03)


def test_the_frontier_spends_more_compute_on_more_params_tokens_and_lower_loss(
    client, chinchilla_fit
):
    budgets = [1e19, 1e20, 1e21, 1e22]
    r = client.get(f"/api/v1/scaling-fits/{chinchilla_fit['id']}/frontier",
                   params={"compute": budgets})
    assert r.status_code == 200, r.text
    points = r.json()["points"]
    assert [p["compute"] for p in points] == budgets
    for a, b in zip(points, points[1:], strict=False):
        assert b["params"] > a["params"] and b["tokens"] > a["tokens"] and b["loss"] < a["loss"]
    for p in points:
        assert p["status"] == "ready" and p["reason"] == ""
        assert p["lower"] <= p["loss"] <= p["upper"]
        assert 6 * p["params"] * p["tokens"] == pytest.approx(p["compute"], rel=1e-6)


def test_a_law_of_compute_alone_says_why_its_frontier_has_no_params_or_tokens(
    client, chinchilla_fit
):
    fit = request_fit(client, chinchilla_fit["project"], law="loglinear",
                      runs={"group": "grid", "tags": ["sweep"]})
    assert fit["status"] == "ready", fit["reason"]
    r = client.get(f"/api/v1/scaling-fits/{fit['id']}/frontier",
                   params={"compute": [1e20, 1e21]})
    assert r.status_code == 200, r.text
    for p in r.json()["points"]:
        assert p["params"] is None and p["tokens"] is None
        assert p["status"] == "no_allocation" and "no N/D split" in p["reason"]
        assert p["lower"] <= p["loss"] <= p["upper"]


def test_too_few_runs_or_one_model_size_give_a_status_not_a_fit(client, project):
    for d in (1e9, 2e9, 4e9):
        finished_run(client, project, chinchilla(1e8, d), group="few", params=1e8, tokens=d)
    few = request_fit(client, project, runs={"group": "few"})
    assert few["status"] == "insufficient_data" and "3 usable runs" in few["reason"]
    for d in (1e9, 2e9, 4e9, 8e9, 16e9, 32e9):
        finished_run(client, project, chinchilla(1e8, d), group="one", params=1e8, tokens=d)
    one = request_fit(client, project, runs={"group": "one"})
    assert one["status"] == "degenerate" and "same model size" in one["reason"]
    r = client.post(f"/api/v1/scaling-fits/{one['id']}/predict", json={"params": 1, "tokens": 1})
    assert r.status_code == 409 and "degenerate" in r.json()["error"]["message"]


def test_predict_and_frontier_before_the_fit_is_ready_are_409(client, project, settings):
    finished_run(client, project, 3.0, params=1e8, tokens=1e9)
    with session_scope(settings.database_url) as s:  # a fit whose job has not run yet
        pid = s.scalar(select(Project.id).where(Project.name == project))
        row = ScalingFitRow(project_id=pid, metric="val_loss", law="chinchilla")
        s.add(row)
        s.flush()
        fit_id = row.id
    assert client.get(f"/api/v1/scaling-fits/{fit_id}").json()["status"] == "pending"
    r = client.post(f"/api/v1/scaling-fits/{fit_id}/predict", json={"params": 1e9, "tokens": 1e10})
    assert r.status_code == 409
    assert r.json()["error"]["message"].startswith(f"scaling fit {fit_id} is still pending")
    frontier = client.get(f"/api/v1/scaling-fits/{fit_id}/frontier", params={"compute": 1e20})
    assert frontier.status_code == 409


def test_a_key_of_another_project_gets_404_for_its_fits(client, project, settings):
    with session_scope(settings.database_url) as s:
        mine, theirs = create_key(s, project), create_key(s, project + "-other")
    as_mine = {"Authorization": f"Bearer {mine}"}
    as_theirs = {"Authorization": f"Bearer {theirs}"}
    finished_run(client, project, 3.0, params=1e8, tokens=1e9)
    created = client.post(f"/api/v1/projects/{project}/scaling-fits", headers=as_mine,
                          json={"metric": "val_loss", "law": "loglinear"})
    assert created.status_code == 201
    fid = created.json()["id"]
    assert client.get(f"/api/v1/scaling-fits/{fid}", headers=as_mine).status_code == 200
    for method, url, body in [
        ("GET", f"/api/v1/scaling-fits/{fid}", None),
        ("POST", f"/api/v1/scaling-fits/{fid}/predict", {"params": 1e9, "tokens": 1e10}),
        ("GET", f"/api/v1/scaling-fits/{fid}/frontier?compute=1e20", None),
        ("GET", f"/api/v1/projects/{project}/scaling-fits", None),
        ("POST", f"/api/v1/projects/{project}/scaling-fits", {"metric": "val_loss"}),
        ("POST", f"/api/v1/projects/{project}/hparam-laws", {"metric": "val_loss",
                                                            "hparam": "lr"}),
    ]:
        r = client.request(method, url, json=body, headers=as_theirs)
        assert r.status_code == 404, (method, url, r.text)


@pytest.mark.parametrize("body, field", [
    ({"metric": "val_loss", "law": "kaplan"}, "law"),
    ({"metric": ""}, "metric"),
    ({"metric": "val_los"}, "metric"),  # no run logs it: a typo, refused up front
    ({"metric": "val_loss", "runs": {"group": "g", "tag": ["a"]}}, "runs.tag"),
])
def test_bad_fit_requests_are_refused_naming_the_field(client, project, body, field):
    finished_run(client, project, 3.0, params=1e8, tokens=1e9)
    r = client.post(f"/api/v1/projects/{project}/scaling-fits", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == field


def test_bad_predict_frontier_and_hparam_inputs_name_the_field(client, chinchilla_fit, project):
    fid = chinchilla_fit["id"]
    r = client.post(f"/api/v1/scaling-fits/{fid}/predict", json={"params": -1, "tokens": 1e9})
    assert r.status_code == 422 and r.json()["error"]["field"] == "params"
    r = client.get(f"/api/v1/scaling-fits/{fid}/frontier")
    assert r.status_code == 422 and r.json()["error"]["field"] == "compute"
    r = client.get(f"/api/v1/scaling-fits/{fid}/frontier", params={"compute": -5})
    assert r.status_code == 422 and r.json()["error"]["field"].startswith("compute")
    finished_run(client, project, 3.0, params=1e8, tokens=1e9)
    r = client.post(f"/api/v1/projects/{project}/hparam-laws",
                    json={"metric": "val_loss", "hparam": "l r"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "hparam"
    assert client.get("/api/v1/scaling-fits/999999999").status_code == 404


def test_unfinished_runs_count_through_their_forecast_only_when_asked(
    client, project, settings
):
    for n in (1e7, 3e7, 1e8, 3e8):
        finished_run(client, project, chinchilla(n, 20 * n), params=n, tokens=20 * n)
    running = client.post("/api/v1/runs", json={
        "project": project, "params": 1e9, "tokens_per_step": 2e10 / 5000, "total_steps": 5000,
    }).json()
    with session_scope(settings.database_url) as s:  # as the forecast job would store it
        s.add(Forecast(run_id=running["id"], key="val_loss", status="ready", target_step=5000,
                       level=0.9, final_mean=2.6, final_lower=2.5, final_upper=2.7))
    without = request_fit(client, project, law="loglinear")
    assert without["n_runs"] == 4 and "1 running (not finished)" in without["reason"]
    with_it = request_fit(client, project, law="loglinear", include_unfinished=True)
    assert with_it["status"] == "ready" and with_it["n_runs"] == 5
    assert with_it["include_unfinished"] is True
    (forecast,) = [p for p in with_it["inputs"] if p["source"] == "forecast"]
    assert forecast["run_id"] == running["id"] and forecast["loss"] == 2.6
    assert forecast["tokens"] == pytest.approx(2e10)
    assert forecast["loss_sd"] == pytest.approx(0.2 / (2 * 1.6449), rel=1e-3)
    listed = client.get(f"/api/v1/projects/{project}/scaling-fits").json()["fits"]
    assert [f["id"] for f in listed] == [with_it["id"], without["id"]]


def test_hparam_law_recovers_the_optimal_lr_power_law_from_sweeps(client, project):
    rng = np.random.default_rng(3)
    for n in (2e7, 8e7, 3.2e8):
        for d in (20 * n, 80 * n):
            best = LR_LAW["a"] * n ** LR_LAW["b"] * d ** LR_LAW["c"]
            for k in range(-2, 3):  # the grid is off the optimum by a factor 2**0.3
                lr = best * 2 ** (k + 0.3)
                loss = 3.0 + 0.05 * math.log(lr / best) ** 2 + rng.normal(0, 1e-4)
                finished_run(client, project, loss, group="lr", params=n, tokens=d,
                             config={"lr": lr})
    finished_run(client, project, "NaN", group="lr", params=2e7, tokens=4e8,  # diverged
                 config={"lr": 1.0})
    created = client.post(f"/api/v1/projects/{project}/hparam-laws",
                          json={"metric": "val_loss", "hparam": "lr", "runs": {"group": "lr"}})
    assert created.status_code == 201, created.text
    law = settled(client, created.json()["id"])
    assert law["status"] == "ready", law["reason"]
    assert law["law"] == "hparam:lr" and len(law["inputs"]) == 6 and law["n_runs"] == 31
    assert law["params"]["b_params"] == pytest.approx(LR_LAW["b"], abs=0.02)
    assert law["params"]["c_tokens"] == pytest.approx(LR_LAW["c"], abs=0.02)
    n, d = 1e9, 2e10
    pred = client.post(f"/api/v1/scaling-fits/{law['id']}/predict",
                       json={"params": n, "tokens": d}).json()
    truth = LR_LAW["a"] * n ** LR_LAW["b"] * d ** LR_LAW["c"]
    assert pred["quantity"] == "lr" and pred["mean"] == pytest.approx(truth, rel=0.05)
    assert pred["lower"] <= truth <= pred["upper"]
    frontier = client.get(f"/api/v1/scaling-fits/{law['id']}/frontier",
                          params={"compute": 1e20})
    assert frontier.status_code == 409


def test_the_openapi_offers_every_law_the_science_knows(client):
    schema = client.get("/openapi.json").json()["components"]["schemas"]["ScalingFitIn"]
    law = schema["properties"]["law"]
    assert set(law["enum"]) == set(LAWS)


@pytest.mark.parametrize("compute", [5e-324, 1e-300, 1e300, 1.7e308])
def test_a_budget_outside_any_training_run_is_refused_naming_compute(client, chinchilla_fit,
                                                                     compute):
    """A denormal budget made N* underflow to 0 (a 500, found by the schema fuzz); a budget of
    1e300 FLOPs is no run either."""
    r = client.get(f"/api/v1/scaling-fits/{chinchilla_fit['id']}/frontier",
                   params={"compute": [1e20, compute]})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"].startswith("compute")


@pytest.mark.parametrize("field", ["params", "tokens", "unique_tokens", "flops"])
@pytest.mark.parametrize("value", [5e-324, 1e300])
def test_a_prediction_far_outside_any_run_is_refused_or_finite(client, chinchilla_fit, field,
                                                               value):
    body = {"params": 1e8, "tokens": 2e9} | {field: value}
    r = client.post(f"/api/v1/scaling-fits/{chinchilla_fit['id']}/predict", json=body)
    if r.status_code == 200:
        assert all(math.isfinite(r.json()[k]) for k in ("mean", "lower", "upper")), r.text
    else:
        assert r.status_code == 422 and r.json()["error"]["field"] == field, r.text
