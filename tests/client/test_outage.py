"""The server goes away and comes back while the loop logs: every point arrives exactly once."""

from __future__ import annotations

import time

import pytest

from tests.client.conftest import Server
from tests.waiting import wait_until

STEPS, KEYS = 25_000, ("loss", "lr", "grad_norm", "tokens")  # 100,000 points


def value(key: str, step: int) -> float:
    return KEYS.index(key) + 1.0 / (step + 1)


@pytest.mark.slow
def test_points_logged_across_a_server_outage_arrive_exactly_once(make_server, start_run) -> None:
    server: Server = make_server()
    run = start_run(url=server.url, name="outage", total_steps=STEPS)  # the server is down at init
    log_seconds = []
    for step in range(STEPS):
        if step in (5_000, 20_000):
            server.start()
            server.wait_ready()
        if step == 5_000:  # the backlog drains within one backoff cap (5 s) of the return
            wait_until(lambda: run.stats.confirmed == 5_000, 15,
                       "the first 5,000 points were not confirmed", every=0.05)
        if step == 12_500:
            server.kill()  # while the sender is delivering live
        if step % 250 == 0:
            time.sleep(0.02)  # a training step's worth of time, so the sender keeps up
        started = time.perf_counter()
        run.log({key: value(key, step) for key in KEYS}, step=step)
        log_seconds.append(time.perf_counter() - started)

    stats = run.finish(timeout=60)

    assert stats.confirmed == STEPS and stats.unconfirmed == stats.dropped == 0
    for key in KEYS:
        steps, values = server.points(run.id, key)
        assert steps == list(range(STEPS))
        assert values == [value(key, s) for s in steps]
    summary = server.get(f"/runs/{run.id}")["summary"]
    assert {key: summary[key]["count"] for key in KEYS} == dict.fromkeys(KEYS, STEPS)
    assert sorted(log_seconds)[STEPS // 2] < 1e-3  # the outage never reached the loop
