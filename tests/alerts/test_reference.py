"""The value a stop's reference run stands for: its curve's level, as the stop compares."""

import uuid

from backend.alerts.service import reference_for
from backend.db import session_scope
from backend.forecasts.service import store_forecast
from backend.models import Project, Run, Series, StopPolicy


def _finished(s, project: Project, name: str, last: float, forecast: dict | None) -> None:
    run = Run(id=uuid.uuid4().hex, project_id=project.id, name=name, group="g",
              status="finished", total_steps=2000, last_step=1500)
    s.add(run)
    s.flush()
    s.add(Series(run_id=run.id, key="loss", count=10, first_step=0, last_step=1500,
                 last_value=last))
    if forecast:
        store_forecast(s, run.id, "loss", {"status": "ready", "level": 0.9, **forecast})


def test_a_finished_run_is_the_reference_by_its_level_not_its_last_steps_batch_noise(pg_url):
    with session_scope(pg_url) as s:
        project = Project(name=f"p-{uuid.uuid4().hex[:12]}")
        s.add(project)
        s.flush()
        # Stopped at 1,500 of 2,000 steps: its forecast for step 2,000 holds that step's batch
        # noise (4% down, shared with the sweep), its level does not.
        _finished(s, project, "stopped", 2.5, {"final_mean": 1.92, "trend_mean": 2.0,
                                               "final_lower": 1.9, "final_upper": 1.94})
        # Stored before forecasts kept their level: its final_mean stands.
        _finished(s, project, "older", 2.4, {"final_mean": 1.98, "final_lower": 1.96,
                                             "final_upper": 2.0})
        live = Run(id=uuid.uuid4().hex, project_id=project.id, name="live", group="g",
                   status="running", total_steps=2000)
        policy = StopPolicy(project_id=project.id, metric="loss",
                            reference={"kind": "best_finished"})
        s.add_all([live, policy])
        s.flush()
        best = reference_for(s, live, policy)
        assert best.value == 1.98 and "older" in best.label
        policy.reference = {"kind": "kth_best", "k": 2}
        assert reference_for(s, live, policy).value == 2.0
