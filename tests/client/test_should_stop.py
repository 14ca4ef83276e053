"""A stop decision taken by the server reaches the training loop within one flush interval."""

from __future__ import annotations

import time

import pytest

from tests.client.conftest import Server

FLUSH_INTERVAL = 0.2


@pytest.mark.slow
def test_should_stop_reaches_the_loop_within_one_flush_interval(
    server: Server, start_run, project: str
) -> None:
    policy = {
        "metric": "val_loss",
        "mode": "min",
        "reference": {"target": 1.0},  # the curve below levels off near 3: hopeless
        "threshold": 0.9,
        "min_progress": 0.1,
    }
    run = start_run(total_steps=2000, flush_interval=FLUSH_INTERVAL)  # makes the project
    server.api.put(f"/projects/{project}/stop-policy", json=policy).raise_for_status()
    server_said = None
    slowest = 0.0  # the server's slowest answer since it decided: a loaded server is slow
    deadline = time.monotonic() + 60
    for step in range(2000):
        run.log({"val_loss": 3.0 + 2.0 / (1 + step) ** 0.5}, step=step)
        time.sleep(0.01)
        asked = time.monotonic()
        decided = server.get(f"/runs/{run.id}")["should_stop"]
        if decided:
            server_said = server_said or time.monotonic()
            slowest = max(slowest, time.monotonic() - asked)
        if run.should_stop or time.monotonic() > deadline:
            break
    heard = time.monotonic()

    forecast = server.get(f"/runs/{run.id}/forecast/val_loss")
    assert server_said is not None, f"the server never decided to stop this run: {forecast}"
    assert run.should_stop
    # The next rows go out within one flush interval; their answer carries the decision (or,
    # if that request was already being answered when the server decided, the one after).
    assert heard - server_said < FLUSH_INTERVAL + 2 * slowest + 0.2
