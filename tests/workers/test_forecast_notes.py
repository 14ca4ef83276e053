"""A forecast's notes are stored whole on Postgres, however many references they name."""

import uuid

from sqlalchemy import select

from backend.db import session_scope
from backend.forecasts.service import store_forecast
from backend.models import Forecast, Project, Run


def test_a_long_prior_note_and_reason_are_stored_whole(pg_url):
    # Eight references with long names, their calibration and a blend: well past 512 characters,
    # where the insert used to fail and the forecast was lost.
    prior = "; ".join(f"reference run {i} " + "x" * 120 for i in range(8))
    reason = "fitted lr_annealing; " + "held-back tail error 0.1%, " * 40
    with session_scope(pg_url) as s:
        project = Project(name=f"p-{uuid.uuid4().hex[:12]}")
        s.add(project)
        s.flush()
        run = Run(id=uuid.uuid4().hex, project_id=project.id, name="r", total_steps=100)
        s.add(run)
        s.flush()
        store_forecast(s, run.id, "loss", {"status": "ready", "reason": reason, "prior": prior})
        run_id = run.id
    with session_scope(pg_url) as s:
        row = s.scalar(select(Forecast).where(Forecast.run_id == run_id))
        assert len(prior) > 1000 and row.prior == prior and row.reason == reason
