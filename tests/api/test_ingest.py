"""Metrics ingest on Postgres: set-based, idempotent, NaN-safe, all-or-nothing, and 4xx that
name the field without touching what was stored."""

import math
import time

import pytest
from fastapi.testclient import TestClient

from backend.metrics import ingest


def post(client: TestClient, run_id: str, rows: list[dict] | bytes, **kw):
    if isinstance(rows, bytes):
        return client.post(f"/api/v1/runs/{run_id}/metrics", content=rows, **kw)
    return client.post(f"/api/v1/runs/{run_id}/metrics", json={"rows": rows}, **kw)


def series(client: TestClient, run_id: str, key: str, max_points: int = 100_000) -> dict:
    r = client.get(f"/api/v1/runs/{run_id}/metrics/{key}", params={"max_points": max_points})
    assert r.status_code == 200, r.text
    return r.json()


def test_a_batch_is_stored_and_its_retry_is_a_no_op(client, make_run):
    run = make_run()
    rows = [{"step": s, "values": {"loss": 4.0 - s / 1000, "lr": 1e-3}} for s in range(10_000)]
    first = post(client, run["id"], rows)
    assert first.status_code == 200
    assert first.json() == {"accepted": 20_000, "duplicates": 0, "should_stop": False}
    again = post(client, run["id"], rows).json()
    assert again["accepted"] == 0 and again["duplicates"] == 20_000
    loss = series(client, run["id"], "loss")
    assert loss["count"] == 10_000 and loss["step"] == list(range(10_000))
    assert loss["value"][123] == pytest.approx(4.0 - 0.123)


def test_repeats_inside_one_batch_keep_the_first_value(client, make_run):
    run = make_run()
    body = post(client, run["id"], [{"step": 5, "values": {"loss": 1.0}},
                                   {"step": 5, "values": {"loss": 2.0}}]).json()
    assert (body["accepted"], body["duplicates"]) == (1, 1)
    assert series(client, run["id"], "loss")["value"] == [1.0]


def test_overlapping_batches_add_only_new_points_to_the_summary(client, make_run):
    run = make_run()
    post(client, run["id"], [{"step": s, "values": {"loss": float(s)}} for s in range(0, 100)])
    body = post(client, run["id"], [{"step": s, "values": {"loss": float(s)}}
                                   for s in range(50, 150)]).json()
    assert (body["accepted"], body["duplicates"]) == (50, 50)
    summary = client.get(f"/api/v1/runs/{run['id']}").json()["summary"]["loss"]
    assert summary["count"] == 150
    assert (summary["first_step"], summary["last_step"]) == (0, 149)
    assert (summary["min"], summary["max"], summary["last_value"]) == (0.0, 149.0, 149.0)


def test_nan_and_infinities_are_stored_as_such(client, make_run):
    run = make_run()
    sent = [2.5, "NaN", "Infinity", "-Infinity"]
    rows = [{"step": s, "values": {"loss": v}} for s, v in enumerate(sent)]
    assert post(client, run["id"], rows).json()["accepted"] == 4
    assert series(client, run["id"], "loss")["value"] == [2.5, "NaN", "Infinity", "-Infinity"]
    summary = client.get(f"/api/v1/runs/{run['id']}").json()["summary"]["loss"]
    assert summary["nonfinite"] == 3 and summary["min"] == summary["max"] == 2.5


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ([{"step": -1, "values": {"loss": 1}}], 422, "rows[0].step"),
        ([{"step": 1.5, "values": {"loss": 1}}], 422, "rows[0].step"),
        ([{"step": 0, "values": {"loss": 1}}, {"step": "3", "values": {"loss": 1}}], 422,
         "rows[1].step"),
        ([{"step": 0, "values": {"loss": "high"}}], 422, "rows[0].values.loss"),
        ([{"step": 0, "values": {"loss": None}}], 422, "rows[0].values.loss"),
        ([{"step": 0, "values": {"loss": True}}], 422, "rows[0].values.loss"),
        ([{"step": 0, "values": {}}], 422, "rows[0].values"),
        ([{"step": 0, "values": {"x" * 300: 1}}], 422, "rows[0].values"),
        ([{"step": 0, "values": {"loss": 1}, "wall": 3}], 422, "rows[0].wall"),
        ([{"step": 0, "values": {"loss": 1}, "time": "yesterday"}], 422, "rows[0].time"),
        ([{"step": s, "values": {"loss": 1}} for s in range(10_001)], 413, "rows"),
        (b"{not json", 400, "body"),
        (b'{"rows": 5}', 422, "rows"),
        (b"[]", 422, "body"),
    ],
)
def test_bad_input_gets_a_4xx_naming_the_field_and_loses_nothing(client, make_run, body, status,
                                                                field):
    run = make_run()
    good = [{"step": s, "values": {"loss": 3.0}} for s in range(10)]
    assert post(client, run["id"], good).json()["accepted"] == 10
    r = post(client, run["id"], body)
    assert r.status_code == status, r.text
    assert r.json()["error"]["field"] == field
    assert series(client, run["id"], "loss")["value"] == [3.0] * 10


def test_points_keep_their_wall_time_or_get_the_servers(client, make_run):
    run = make_run()
    before = time.time()
    post(client, run["id"], [{"step": 0, "values": {"loss": 1.0}, "time": 1_700_000_000.5},
                             {"step": 1, "values": {"loss": 0.9}}])
    got = series(client, run["id"], "loss")
    assert got["time"][0] == 1_700_000_000.5
    assert before <= got["time"][1] <= time.time()


def test_metrics_for_an_unknown_run_get_404(client):
    r = post(client, "no-such-run", [{"step": 0, "values": {"loss": 1}}])
    assert r.status_code == 404 and r.json()["error"]["field"] == "run_id"


def test_a_failure_mid_write_leaves_no_half_written_batch(client, make_run, monkeypatch):
    """The points go in before the summaries; an error in between must roll both back."""
    run = make_run()
    post(client, run["id"], [{"step": 0, "values": {"loss": 1.0}}])

    def explode(*_a, **_k):
        raise RuntimeError("simulated crash after the points were inserted")

    monkeypatch.setattr(ingest, "_merge_blocks", explode)
    as_server = TestClient(client.app, raise_server_exceptions=False, headers=client.headers)
    r = post(as_server, run["id"], [{"step": s, "values": {"loss": 2.0}} for s in range(1, 500)])
    assert r.status_code == 500 and "simulated" not in r.text
    monkeypatch.undo()
    loss = series(client, run["id"], "loss")
    assert loss["count"] == 1 and loss["step"] == [0]
    # the same batch, retried once the fault is gone, is stored whole
    r = post(client, run["id"], [{"step": s, "values": {"loss": 2.0}} for s in range(1, 500)])
    assert r.json()["accepted"] == 499 and series(client, run["id"], "loss")["count"] == 500


def test_ingest_updates_the_run_progress(client, make_run):
    run = make_run(total_steps=1000)
    post(client, run["id"], [{"step": 10, "values": {"loss": 1}}, {"step": 7, "values": {"a": 1}}])
    after = client.get(f"/api/v1/runs/{run['id']}").json()
    assert after["last_step"] == 10 and after["last_seen"] >= run["last_seen"]
    assert sorted(client.get(f"/api/v1/runs/{run['id']}/metrics").json()) == ["a", "loss"]
    assert math.isclose(after["summary"]["a"]["last_value"], 1)
