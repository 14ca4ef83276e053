"""The forecast body of API.md."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from backend.runs.schemas import OUT


class FinalValue(BaseModel):
    """The value the metric will be logged at on the target step, with its `level` interval.
    Where finished runs that saw the same batches show that step's batch noise, it is in
    here and not in `curve`, whose last point is then the level without it."""

    model_config = OUT

    mean: float
    lower: float
    upper: float
    level: float


class ForecastCurve(BaseModel):
    """The forecast curve's level to the target step; the band is where the metric will be
    logged (the level's interval widened by the run's own point-to-point scatter)."""

    model_config = OUT

    step: list[float]
    mean: list[float]
    lower: list[float]
    upper: list[float]
    # Only for a run with a logged lr and no lr_schedule: the lr the forecast assumed at each
    # step (read off the logged lr where a decay has begun, else held at its last value).
    lr: list[float] | None = None


class ForecastOut(BaseModel):
    model_config = OUT

    status: Literal["ready", "pending", "insufficient_data", "diverged", "not_loss_like"]
    reason: str = ""
    fitted_upto_step: int | None = None
    target_step: int | None = None
    model: str | None = None
    params: dict[str, float] | None = None
    prior: str | None = None
    # Shown at once while the replays of the run's new 5% progress step are made: calibrated
    # on an earlier step's, or not yet (``prior`` says); the final forecast follows within seconds
    # and decides the stop (``p_underperform``/``should_stop`` stay the last final one's).
    provisional: bool = False
    final: FinalValue | None = None
    curve: ForecastCurve | None = None
    p_underperform: float | None = None
    should_stop: bool = False
    fitted_at: datetime | None = None
    stale: bool = False
