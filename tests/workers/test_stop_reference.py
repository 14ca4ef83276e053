"""A stop's reference run is read for the paired check even when it is older than the
finished runs a forecast is offered (workers.tasks: the latest MAX_CANDIDATES)."""

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from backend.settings import Settings
from tests.conftest import forecast_to_final, held_app
from tests.faults.test_frozen_worker import log, loss, new_run, stop_against_the_best_finished
from workers import tasks

TOTAL = 1000


@pytest.fixture
def held(settings: Settings) -> Iterator[TestClient]:
    with held_app(settings) as client:
        yield client


def _run(client: TestClient, project: str, floor: float, upto: int, finish: bool) -> str:
    run_id = new_run(client, project, TOTAL)
    log(client, run_id, 0, upto, floor)
    if finish:
        client.patch(f"/api/v1/runs/{run_id}", json={"status": "finished"})
    return run_id


def test_the_paired_check_reads_a_best_run_older_than_the_candidates(held, settings, project):
    _run(held, project, 1.9, TOTAL, finish=True)  # the best, and the first to finish
    for i in range(tasks.MAX_CANDIDATES):  # newer, all worse: the candidates
        _run(held, project, 2.2 + 0.01 * i, TOTAL, finish=True)
    stop_against_the_best_finished(held, project)
    worse = _run(held, project, 2.6, TOTAL // 2, finish=False)

    assert forecast_to_final(settings, worse) == "stored"
    reason = held.get(f"/api/v1/runs/{worse}").json()["stop_reason"]
    # The oldest run's last value (no forecast of it was made), not a candidate's.
    assert reason["reference"] == pytest.approx(loss(TOTAL - 20, 1.9))
    # The forecast asked to stop, so the paired check was consulted: it had the run to pair with.
    assert reason["p_forecast"] >= 0.9 and reason["p_paired"] is not None
