"""NaN and infinities come back as logged, on Postgres and on the embedded SQLite alike: in the
run's summary (first/last value), in the runs list, and in the metric read, raw or from the
min/max blocks. API.md: non-finite numbers travel as "NaN", "Infinity", "-Infinity"."""

import uuid

from fastapi.testclient import TestClient


def _run(api: TestClient) -> tuple[str, str]:
    project = f"p-{uuid.uuid4().hex[:12]}"
    response = api.post("/api/v1/runs", json={"project": project, "name": "r"})
    assert response.status_code == 201, response.text
    return project, response.json()["id"]


def _log(api: TestClient, run_id: str, series: dict[str, list]) -> dict:
    steps = sorted({s for values in series.values() for s in range(len(values))})
    rows = [{"step": s, "values": {k: v[s] for k, v in series.items() if s < len(v)}}
            for s in steps]
    response = api.post(f"/api/v1/runs/{run_id}/metrics", json={"rows": rows})
    assert response.status_code == 200, response.text
    return response.json()


def _values(api: TestClient, run_id: str, key: str, max_points: int = 2000) -> list:
    response = api.get(f"/api/v1/runs/{run_id}/metrics/{key}",
                       params={"max_points": max_points})
    assert response.status_code == 200, response.text
    return response.json()["value"]


LOGGED = {
    "loss": [2.5, "Infinity", 1.0, "NaN"],      # ends on NaN: a diverged run
    "grad_norm": ["NaN", 3.0, "Infinity"],      # starts on NaN, ends on +inf
    "reward": [1.0, "-Infinity"],
}


def test_a_summary_keeps_nan_and_infinities_as_logged(api):
    project, run_id = _run(api)
    assert _log(api, run_id, LOGGED)["accepted"] == 9
    summary = api.get(f"/api/v1/runs/{run_id}").json()["summary"]
    assert summary["loss"] == {"count": 4, "first_step": 0, "first_value": 2.5, "last_step": 3,
                               "last_value": "NaN", "min": 1.0, "max": 2.5, "nonfinite": 2}
    assert (summary["grad_norm"]["first_value"], summary["grad_norm"]["last_value"]) == (
        "NaN", "Infinity")
    assert summary["grad_norm"]["min"] == summary["grad_norm"]["max"] == 3.0
    assert summary["reward"]["last_value"] == "-Infinity"
    # The runs list (the dashboard's table) reads the same stored summary.
    (listed,) = api.get("/api/v1/runs", params={"project": project}).json()["runs"]
    assert listed["summary"] == summary


def test_a_stored_nan_summary_merges_with_later_batches_and_retries(api):
    _, run_id = _run(api)
    _log(api, run_id, LOGGED)
    assert _log(api, run_id, LOGGED)["accepted"] == 0  # a retry changes nothing
    summary = api.get(f"/api/v1/runs/{run_id}").json()["summary"]
    assert (summary["loss"]["last_value"], summary["grad_norm"]["first_value"]) == ("NaN", "NaN")
    later = [{"step": 4, "values": {"loss": 0.5}}]
    assert api.post(f"/api/v1/runs/{run_id}/metrics", json={"rows": later}).status_code == 200
    loss = api.get(f"/api/v1/runs/{run_id}").json()["summary"]["loss"]
    assert (loss["last_step"], loss["last_value"], loss["min"], loss["nonfinite"]) == (
        4, 0.5, 0.5, 2)


def test_a_batch_with_no_finite_value_of_a_key_merges_with_the_stored_summary(api):
    """A diverged run goes on logging NaN: a batch with none finite leaves min and max as
    they were (it once failed on Postgres, whose driver cannot type a bare NULL)."""
    _, run_id = _run(api)
    _log(api, run_id, {"loss": [2.5, 1.0]})
    rows = [{"step": s, "values": {"loss": v}} for s, v in [(2, "NaN"), (3, "Infinity")]]
    response = api.post(f"/api/v1/runs/{run_id}/metrics", json={"rows": rows})
    assert response.status_code == 200, response.text
    loss = api.get(f"/api/v1/runs/{run_id}").json()["summary"]["loss"]
    assert (loss["count"], loss["last_value"], loss["min"], loss["max"], loss["nonfinite"]) == (
        4, "Infinity", 1.0, 2.5, 2)


def test_the_metric_read_returns_nan_and_infinities_as_logged(api):
    _, run_id = _run(api)
    _log(api, run_id, LOGGED)
    for key, logged in LOGGED.items():
        assert _values(api, run_id, key) == logged, key


def test_a_long_series_read_from_its_blocks_keeps_nan_and_infinity(api):
    _, run_id = _run(api)
    values: list = [1.0 + s / 1000 for s in range(5_000)]
    values[1_234], values[4_321] = "NaN", "Infinity"
    _log(api, run_id, {"loss": values})
    # 5,000 points for 20: read from the 256-step blocks' extremes, not from the points.
    read = _values(api, run_id, "loss", max_points=20)
    assert len(read) <= 20 and read.count("NaN") == 1 and read.count("Infinity") == 1
