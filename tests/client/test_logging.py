"""Logging against a live server: what is logged arrives once, finished runs say how they ended."""

from __future__ import annotations

import contextlib
import math
import time

import curvecast
import pytest

from tests.client.conftest import Server


def test_logged_rows_arrive_with_nonfinite_values_and_the_spool_is_cleared(
    server: Server, start_run, spool_dir
) -> None:
    run = start_run(name="basic", total_steps=100)
    for step in range(100):
        loss = math.nan if step == 50 else (math.inf if step == 60 else 3.0 - step / 100)
        run.log({"loss": loss, "lr": 1e-3}, step=step)

    stats = run.finish()

    assert stats == curvecast.RunStats(logged=100, confirmed=100, rejected=0, dropped=0)
    assert stats.unconfirmed == 0
    steps, values = server.points(run.id, "loss")
    assert steps == list(range(100))
    assert values[50] == "NaN" and values[60] == "Infinity" and values[0] == 3.0
    body = server.get(f"/runs/{run.id}")
    assert body["status"] == "finished"
    assert body["summary"]["lr"]["count"] == 100
    assert list(spool_dir.iterdir()) == []


def test_steps_default_to_one_past_the_largest_so_far(server: Server, start_run) -> None:
    run = start_run()
    run.log({"loss": 1.0})
    run.log({"loss": 0.9}, step=10)
    run.log({"loss": 0.8})
    run.finish()

    assert server.points(run.id, "loss")[0] == [0, 10, 11]


def test_resuming_by_id_continues_the_same_run(server: Server, start_run) -> None:
    first = start_run(id="resume-me-" + server.url[-5:], name="r")
    first.log({"loss": 2.0}, step=0)
    first.finish("killed")

    second = start_run(id=first.id, name="r")
    second.log({"loss": 1.0}, step=1)
    second.finish()

    assert server.points(first.id, "loss") == ([0, 1], [2.0, 1.0])


@pytest.mark.parametrize(
    ("error", "status"),
    [(None, "finished"), (RuntimeError, "failed"), (KeyboardInterrupt, "killed")],
)
def test_context_manager_marks_the_run_by_how_the_block_ended(
    server: Server, start_run, error: type[BaseException] | None, status: str
) -> None:
    with pytest.raises(error) if error else contextlib.nullcontext():
        with start_run() as run:
            run.log({"loss": 1.0}, step=0)
            if error:
                raise error("boom")

    assert server.get(f"/runs/{run.id}")["status"] == status
    assert server.points(run.id, "loss")[0] == [0]


def test_a_refused_run_raises_at_init(server: Server, spool_dir) -> None:
    with pytest.raises(curvecast.ServerError) as info:
        curvecast.init(project="p", url=server.url, api_key="wrong", spool_dir=spool_dir)

    assert info.value.status_code == 401
    assert list(spool_dir.iterdir()) == []


def test_heartbeats_keep_an_idle_run_alive(server: Server, start_run) -> None:
    run = start_run(heartbeat_interval=0.2)
    run.log({"loss": 1.0}, step=0)
    time.sleep(0.5)
    seen = server.get(f"/runs/{run.id}")["last_seen"]

    time.sleep(0.5)  # logging nothing

    assert server.get(f"/runs/{run.id}")["last_seen"] > seen


def test_forecast_returns_the_servers_forecast_object(start_run) -> None:
    run = start_run(total_steps=1000)
    for step in range(50):
        run.log({"val_loss": 4.0 / (1 + step) ** 0.3}, step=step)
    run.finish()

    forecast = run.forecast("val_loss")

    assert forecast["status"] in ("ready", "pending", "insufficient_data")
