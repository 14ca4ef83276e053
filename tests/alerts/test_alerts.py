"""Stop decisions and alerts with real servers: a local HTTP receiver gets exactly one alert
for a run that crosses the threshold, a retried one after it was down, none for a healthy run.
"""

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from backend.alerts.service import RETRY_DELAYS, record_attempt
from backend.app import create_app
from backend.db import session_scope
from backend.jobs import SWEEP, InProcessDispatcher
from backend.models import Alert, Run, utcnow
from backend.settings import Settings
from tests.conftest import ADMIN_KEY, free_port
from tests.waiting import poll, wait_until
from workers.tasks import handlers

TOTAL = 4000


class Receiver:
    """A webhook endpoint on loopback that records what it is sent. ``hold_first``: it holds
    its first request open until stopped (a delivery under way when its worker dies) and
    answers every later one."""

    def __init__(self, hold_first: bool = False) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.received: list[dict] = []
        self.server: ThreadingHTTPServer | None = None
        self.first_arrived = threading.Event()
        self._hold_first = hold_first
        self._release = threading.Event()

    def start(self) -> None:
        received, first, hold, release = (self.received, self.first_arrived,
                                          self._hold_first, self._release)

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append(json.loads(body))
                if len(received) == 1:
                    first.set()
                    if hold:
                        release.wait(30)
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._release.set()
        if self.server:
            self.server.shutdown()
            self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


@pytest.fixture(scope="module")
def app_client(pg_url: str) -> Iterator[tuple[TestClient, InProcessDispatcher]]:
    """The app with private webhooks allowed (the receiver is on loopback)."""
    settings = Settings(database_url=pg_url, admin_key=ADMIN_KEY, webhook_allow_private=True,
                        stale_after_s=60)
    dispatcher = InProcessDispatcher()
    dispatcher.start(handlers(settings, dispatcher))
    with TestClient(create_app(settings, dispatcher)) as c:
        c.headers["Authorization"] = f"Bearer {ADMIN_KEY}"
        yield c, dispatcher
    dispatcher.close()


def new_run(client: TestClient, project: str) -> str:
    return client.post("/api/v1/runs", json={"project": project, "total_steps": TOTAL}).json()["id"]


def loss(step: float, floor: float) -> float:
    return floor + 3.0 * (step + 100) ** -0.35


def log_run(client: TestClient, project: str, floor: float, upto: int, *, finish: bool = False,
            batches: int = 4) -> tuple[str, list[bool]]:
    """A run logging `loss` to step `upto` in a few batches, waiting for each final forecast
    (the one that decides a stop)."""
    run_id = new_run(client, project)
    steps = list(range(0, upto + 1, 20))
    answers = []
    for i in range(batches):
        part = steps[i * len(steps) // batches:(i + 1) * len(steps) // batches]
        rows = [{"step": s, "values": {"loss": loss(s, floor)}} for s in part]
        answer = client.post(f"/api/v1/runs/{run_id}/metrics", json={"rows": rows}).json()
        answers.append(answer["should_stop"])
        wait_forecast(client, run_id, part[-1])
    if finish:
        client.patch(f"/api/v1/runs/{run_id}", json={"status": "finished"})
    return run_id, answers


def wait_forecast(client: TestClient, run_id: str, step: int, timeout: float = 120) -> dict:
    return poll(lambda: client.get(f"/api/v1/runs/{run_id}/forecast/loss").json(),
                lambda body: body.get("fitted_upto_step") == step
                and not body.get("provisional"), timeout,
                f"no forecast fitted up to {step}", every=0.05)


def setup_project(client: TestClient, project: str, url: str, events: list[str]) -> None:
    log_run(client, project, floor=2.0, upto=TOTAL - 20, finish=True)
    r = client.put(f"/api/v1/projects/{project}/stop-policy", json={
        "metric": "loss", "mode": "min", "reference": "best_finished", "threshold": 0.9,
        "min_progress": 0.1})
    assert r.status_code == 200, r.text
    r = client.post(f"/api/v1/projects/{project}/alert-rules",
                    json={"events": events, "webhook_url": url})
    assert r.status_code == 201, r.text


def test_a_run_that_crosses_the_threshold_alerts_exactly_once(app_client, receiver, project):
    client, _ = app_client
    receiver.start()
    setup_project(client, project, receiver.url, ["should_stop"])
    bad, answers = log_run(client, project, floor=2.6, upto=2000, batches=5)
    run = client.get(f"/api/v1/runs/{bad}").json()
    assert run["should_stop"] is True and answers[-1] is True
    assert run["stop_reason"]["p_underperform"] >= 0.9
    # The stop held against the reference run replayed at this run's progress too.
    assert run["stop_reason"]["p_paired"] >= 0.9
    assert "best finished run" in run["stop_reason"]["reference_label"]
    # The band of the draws p was computed on: one finished run is too few to calibrate on,
    # but it has this run's schedule, so the paired check stood in for the replays and the
    # stop was decided on the forecast's draws of the curve's level, as they were before that
    # run's replay widened the band shown (the paired check corrects them by that replay).
    decided, shown = run["stop_reason"]["decided_on"], run["stop_reason"]["forecast"]
    assert decided["of"] == "level"
    assert shown["lower"] <= decided["lower"] < decided["upper"] <= shown["upper"]
    forecast = client.get(f"/api/v1/runs/{bad}/forecast/loss").json()
    assert "too few finished runs to calibrate on: 1 replayed" in forecast["prior"]
    assert forecast["should_stop"] is True and forecast["p_underperform"] >= 0.9
    wait_until(lambda: len(receiver.received) >= 1, 90, "no alert arrived", every=0.05)
    time.sleep(1)
    assert [(a["event"], a["run_id"]) for a in receiver.received] == [("should_stop", bad)]
    alerts = client.get(f"/api/v1/projects/{project}/alerts").json()["alerts"]
    assert [(a["event"], a["delivered"], a["attempts"]) for a in alerts] == [
        ("should_stop", True, 1)]


def test_a_healthy_run_sends_no_alert(app_client, receiver, project):
    client, _ = app_client
    receiver.start()
    setup_project(client, project, receiver.url, ["should_stop", "diverged"])
    good, answers = log_run(client, project, floor=1.9, upto=2000)
    assert client.get(f"/api/v1/runs/{good}").json()["should_stop"] is False
    assert not any(answers)
    time.sleep(1)
    assert receiver.received == []
    assert client.get(f"/api/v1/projects/{project}/alerts").json()["alerts"] == []


def test_an_alert_is_retried_after_the_receiver_was_down(app_client, receiver, project):
    client, dispatcher = app_client
    setup_project(client, project, receiver.url, ["should_stop"])
    log_run(client, project, floor=2.6, upto=2000, batches=5)

    def first_attempt_failed() -> bool:
        alerts = client.get(f"/api/v1/projects/{project}/alerts").json()["alerts"]
        return bool(alerts) and alerts[0]["attempts"] == 1

    wait_until(first_attempt_failed, 90, "the first delivery never failed", every=0.05)
    alert = client.get(f"/api/v1/projects/{project}/alerts").json()["alerts"][0]
    assert alert["state"] == "pending" and "ConnectError" in alert["last_error"]
    receiver.start()
    time.sleep(RETRY_DELAYS[0])
    dispatcher.send(SWEEP)
    wait_until(lambda: len(receiver.received) == 1, 90, "no single alert arrived",
               every=0.05)

    # The worker records the attempt once the receiver has answered: a moment later.
    alert = poll(lambda: client.get(f"/api/v1/projects/{project}/alerts").json()["alerts"][0],
                 lambda a: a["state"] != "pending", 30, "the delivery was never recorded",
                 every=0.05)
    assert (alert["state"], alert["delivered"], alert["attempts"]) == ("delivered", True, 2)
    assert len(receiver.received) == 1


def test_a_silent_run_is_marked_crashed_and_alerts_stalled(app_client, receiver, project,
                                                           pg_url):
    client, dispatcher = app_client
    receiver.start()
    client.post(f"/api/v1/projects/{project}/alert-rules",
                json={"events": ["stalled"], "webhook_url": receiver.url, "channel": "slack"})
    run_id = client.post("/api/v1/runs", json={"project": project, "name": "quiet"}).json()["id"]
    with session_scope(pg_url) as s:
        s.execute(update(Run).where(Run.id == run_id)
                  .values(last_seen=utcnow().replace(year=2020)))
    dispatcher.send(SWEEP)
    wait_until(lambda: len(receiver.received) == 1, 90, "no single alert arrived",
               every=0.05)
    assert client.get(f"/api/v1/runs/{run_id}").json()["status"] == "crashed"
    text = receiver.received[0]["text"]
    assert "quiet" in text and "stalled" in text and f"#/run/{run_id}" in text


def test_a_nan_loss_alerts_diverged(app_client, receiver, project):
    client, _ = app_client
    receiver.start()
    client.post(f"/api/v1/projects/{project}/alert-rules",
                json={"events": ["diverged"], "webhook_url": receiver.url})
    run_id = new_run(client, project)
    rows = [{"step": s, "values": {"loss": loss(s, 2.0)}} for s in range(0, 1000, 20)]
    rows.append({"step": 1000, "values": {"loss": "NaN"}})
    client.post(f"/api/v1/runs/{run_id}/metrics", json={"rows": rows})
    assert wait_forecast(client, run_id, 1000)["status"] == "diverged"
    wait_until(lambda: len(receiver.received) == 1, 90, "no single alert arrived",
               every=0.05)
    assert receiver.received[0]["event"] == "diverged"


@pytest.mark.parametrize("url", ["ftp://example.com/x", "http://127.0.0.1:9/x",
                                 "http://10.1.2.3/hook", "http://localhost/hook", "not a url"])
def test_a_webhook_to_a_private_or_bad_address_is_refused(client, project, url):
    client.post("/api/v1/runs", json={"project": project})
    r = client.post(f"/api/v1/projects/{project}/alert-rules",
                    json={"events": ["should_stop"], "webhook_url": url})
    assert r.status_code == 422 and r.json()["error"]["field"] == "webhook_url"


def test_unknown_events_are_refused_naming_the_field(client, project):
    client.post("/api/v1/runs", json={"project": project})
    r = client.post(f"/api/v1/projects/{project}/alert-rules",
                    json={"events": ["exploded"], "webhook_url": "https://example.com"})
    assert r.status_code == 422 and r.json()["error"]["field"].startswith("events")


def test_delivery_gives_up_after_its_last_retry():
    alert = Alert(attempts=0, state="pending")
    for _ in RETRY_DELAYS:
        alert.attempts += 1  # claim_alert counts an attempt as it starts
        record_attempt(alert, "HTTP 500")
        assert alert.state == "pending" and alert.next_attempt_at > utcnow()
    alert.attempts += 1
    record_attempt(alert, "HTTP 500")
    assert (alert.state, alert.attempts, alert.next_attempt_at) == (
        "failed", len(RETRY_DELAYS) + 1, None)
