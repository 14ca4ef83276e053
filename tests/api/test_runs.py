"""Runs: creation (idempotent by client id), listing, reading, status changes, auth scope."""

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from backend.db import session_scope
from backend.models import Run, utcnow
from backend.runs.service import create_key, mark_stale_runs_crashed
from tests.conftest import ADMIN_KEY


def test_creating_a_run_returns_it_with_its_fields(make_run, project):
    run = make_run(name="baseline", group="g1", tags=["a", "b"], config={"lr": 3e-4},
                   total_steps=10_000, params=1.2e8, tokens_per_step=524288,
                   lr_schedule={"type": "cosine", "peak_lr": 1e-3, "warmup_steps": 100})
    assert run["project"] == project
    assert (run["name"], run["group"], run["tags"]) == ("baseline", "g1", ["a", "b"])
    assert run["status"] == "running" and run["should_stop"] is False
    assert run["lr_schedule"]["type"] == "cosine" and run["lr_schedule"]["final_lr"] == 0.0
    assert "decay_shape" not in run["lr_schedule"]  # a wsd-only field is not filled in


def test_reposting_a_client_id_returns_the_same_run(client: TestClient, project):
    body = {"project": project, "name": "r", "id": f"{project}-run"}
    first = client.post("/api/v1/runs", json=body)
    again = client.post("/api/v1/runs", json={**body, "name": "renamed"})
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["id"] == first.json()["id"] and again.json()["name"] == "r"


def test_runs_are_listed_per_project(client: TestClient, make_run, project):
    ids = {make_run(name=f"r{i}")["id"] for i in range(3)}
    listed = client.get("/api/v1/runs", params={"project": project}).json()["runs"]
    assert {r["id"] for r in listed} == ids


def test_status_changes_to_finished_failed_killed(client: TestClient, make_run):
    run = make_run()
    for status in ("finished", "failed", "killed"):
        r = client.patch(f"/api/v1/runs/{run['id']}", json={"status": status})
        assert r.status_code == 200 and r.json()["status"] == status
    bad = client.patch(f"/api/v1/runs/{run['id']}", json={"status": "paused"})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "status"


def test_bad_schedule_is_refused_naming_the_field(client: TestClient, project):
    r = client.post("/api/v1/runs", json={
        "project": project, "lr_schedule": {"type": "cosine", "peak_lr": -1}})
    assert r.status_code == 422
    assert r.json()["error"]["field"] == "lr_schedule.peak_lr"


def test_missing_or_wrong_key_gets_401(client: TestClient, make_run):
    run = make_run()
    anonymous = client.get(f"/api/v1/runs/{run['id']}", headers={"Authorization": ""})
    wrong = client.get(f"/api/v1/runs/{run['id']}", headers={"Authorization": "Bearer nope"})
    assert anonymous.status_code == 401 and wrong.status_code == 401
    assert client.get("/api/v1/health", headers={"Authorization": ""}).status_code == 200


def test_a_key_sees_its_project_and_gets_404_for_others(client: TestClient, settings, project):
    with session_scope(settings.database_url) as s:
        mine, theirs = create_key(s, project), create_key(s, project + "-other")
    as_mine = {"Authorization": f"Bearer {mine}"}
    run = client.post("/api/v1/runs", json={"project": project}, headers=as_mine)
    assert run.status_code == 201
    rid = run.json()["id"]
    assert client.get(f"/api/v1/runs/{rid}", headers=as_mine).status_code == 200
    as_theirs = {"Authorization": f"Bearer {theirs}"}
    assert client.get(f"/api/v1/runs/{rid}", headers=as_theirs).status_code == 404
    listing = client.get("/api/v1/runs", params={"project": project}, headers=as_theirs)
    assert listing.status_code == 404
    cross = client.post("/api/v1/runs", json={"project": project}, headers=as_theirs)
    assert cross.status_code == 404
    assert ADMIN_KEY not in (mine, theirs)


def test_heartbeat_updates_last_seen_and_revives_a_crashed_run(client, make_run, settings):
    run = make_run()
    with session_scope(settings.database_url) as s:
        s.execute(update(Run).where(Run.id == run["id"]).values(status="crashed"))
    r = client.post(f"/api/v1/runs/{run['id']}/heartbeat")
    assert r.status_code == 200 and r.json() == {"should_stop": False}
    after = client.get(f"/api/v1/runs/{run['id']}").json()
    assert after["status"] == "running" and after["last_seen"] > run["last_seen"]


def test_silent_runs_become_crashed(client: TestClient, make_run, settings):
    silent, alive, done = make_run(), make_run(), make_run()
    client.patch(f"/api/v1/runs/{done['id']}", json={"status": "finished"})
    with session_scope(settings.database_url) as s:
        s.execute(update(Run).where(Run.id.in_([silent["id"], done["id"]]))
                  .values(last_seen=utcnow() - timedelta(hours=1)))
        assert silent["id"] in {r.id for r in mark_stale_runs_crashed(s, stale_after_s=600)}
    states = {r: client.get(f"/api/v1/runs/{r}").json()["status"]
              for r in (silent["id"], alive["id"], done["id"])}
    assert states == {silent["id"]: "crashed", alive["id"]: "running", done["id"]: "finished"}


def test_dashboard_sign_in_keeps_the_key_in_an_httponly_cookie(client: TestClient, make_run):
    run = make_run()
    browser = TestClient(client.app)
    assert browser.post("/api/v1/session", json={"key": "wrong"}).status_code == 401
    r = browser.post("/api/v1/session", json={"key": ADMIN_KEY})
    assert r.status_code == 200
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "samesite=strict" in cookie.lower()
    assert browser.get(f"/api/v1/runs/{run['id']}").status_code == 200
    browser.delete("/api/v1/session")
    assert browser.get(f"/api/v1/runs/{run['id']}").status_code == 401


def test_a_wsd_schedule_without_its_decay_start_is_refused(client: TestClient, project):
    r = client.post("/api/v1/runs", json={
        "project": project, "lr_schedule": {"type": "wsd", "peak_lr": 1e-3, "total_steps": 10}})
    assert r.status_code == 422 and r.json()["error"]["field"] == "lr_schedule"
    assert "decay_start" in r.json()["error"]["message"]


@pytest.mark.parametrize(("body", "field"), [
    # NaN and Infinity are not JSON, but the parser takes them as literals.
    ('{"project": "P", "params": Infinity}', "params"),
    ('{"project": "P", "tokens": NaN}', "tokens"),
    ('{"project": "P", "config": {"opt": {"betas": [0.9, NaN]}}}', "config"),
    ('{"project": "P", "lr_schedule": {"type": "cosine", "peak_lr": Infinity}}',
     "lr_schedule.peak_lr"),
    ('{"project": "P", "lr_schedule": {"knots": [[0, 0.0], [10, Infinity]]}}',
     "lr_schedule.knots.1.1"),
    # Schedules the forecaster could not use, once their length is known.
    ('{"project": "P", "total_steps": 100, "lr_schedule": {"type": "cosine", "peak_lr": 0.1, '
     '"warmup_steps": 500}}', "lr_schedule.warmup_steps"),
    ('{"project": "P", "lr_schedule": {"type": "cosine", "peak_lr": 0.1, "final_lr": 1.0, '
     '"total_steps": 100}}', "lr_schedule.final_lr"),
    ('{"project": "P", "lr_schedule": {"type": "wsd", "peak_lr": 0.1, "decay_start": 500, '
     '"total_steps": 100}}', "lr_schedule.decay_start"),
    ('{"project": "P", "lr_schedule": {"knots": [[0, 0.0], [100, 0.0]]}}',
     "lr_schedule.knots"),
])
def test_a_run_no_forecast_could_use_is_refused_naming_the_field(client: TestClient, project,
                                                                 body: str, field: str):
    r = client.post("/api/v1/runs", content=body.replace('"P"', f'"{project}"'),
                    headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"].startswith(field), r.text
    assert client.get("/api/v1/runs", params={"project": project}).status_code == 404  # none


def test_a_named_schedule_whose_length_comes_later_is_kept(client: TestClient, project):
    """Without total_steps on the run or the schedule nothing can be checked yet: kept as sent."""
    r = client.post("/api/v1/runs", json={
        "project": project, "lr_schedule": {"type": "cosine", "peak_lr": 0.1, "warmup_steps": 500}})
    assert r.status_code == 201, r.text


@pytest.mark.parametrize(("method", "path", "body", "field"), [
    ("post", "/api/v1/runs", {"project": "P", "tags": ["a\x00b"]}, "tags.0"),
    ("post", "/api/v1/runs", {"project": "P", "config": {"opt": {"name": "\x00"}}},
     "config.opt.name"),
    ("post", "/api/v1/runs", {"project": "P", "config": {"k\x00": 1}}, "config.'k\\x00'"),
    ("get", "/api/v1/runs?project=%00", None, "project"),
    ("get", "/api/v1/runs/%00/metrics/loss", None, "path"),
    ("put", "/api/v1/projects/P/stop-policy", {"metric": "lo\x00ss"}, "metric"),
    ("put", f"/api/v1/projects/{'x' * 129}/stop-policy", {}, "project"),
    ("put", "/api/v1/projects/a%20b/stop-policy", {}, "project"),
    ("get", f"/api/v1/scaling-fits/{2**63}", None, "fit_id"),
    ("delete", f"/api/v1/projects/P/alert-rules/{2**31}", None, "rule_id"),
])
def test_what_postgres_could_not_hold_is_refused_naming_the_field(
        client: TestClient, project, method, path, body, field):
    """Found by tests/api/test_schema_fuzz.py: each of these was a 500 from Postgres."""
    path = path.replace("/P/", f"/{project}/")
    if body is not None and "project" in body:
        body = body | {"project": project}
    r = client.request(method.upper(), path, **({} if body is None else {"json": body}))
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == field, r.text


def test_a_key_that_is_not_ascii_is_an_unknown_key(client: TestClient):
    r = client.post("/api/v1/session", json={"key": "clé"})
    assert r.status_code == 401 and r.json()["error"]["field"] == "key"
