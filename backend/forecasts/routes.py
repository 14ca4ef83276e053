"""HTTP route for reading a series' stored forecast."""

from fastapi import APIRouter

from backend.deps import PrincipalDep, SessionDep
from backend.errors import NotFound
from backend.forecasts.schemas import ForecastOut
from backend.forecasts.service import read_forecast
from backend.metrics.reads import find_series
from backend.runs.service import get_run

router = APIRouter(prefix="/api/v1", tags=["forecasts"])


@router.get("/runs/{run_id}/forecast/{key:path}", response_model=ForecastOut)
def get_forecast(run_id: str, key: str, session: SessionDep, who: PrincipalDep) -> ForecastOut:
    """The latest stored forecast of the metric at the run's total_steps, with its interval."""
    run = get_run(session, who, run_id)
    series = find_series(session, run.id, key)
    if series is None:
        raise NotFound(f"run {run_id!r} has no metric {key!r}", "key")
    return ForecastOut(**read_forecast(session, run, series))
