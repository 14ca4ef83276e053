"""The forecast body of API.md."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from backend.runs.schemas import OUT


class FinalValue(BaseModel):
    model_config = OUT

    mean: float
    lower: float
    upper: float
    level: float


class ForecastCurve(BaseModel):
    model_config = OUT

    step: list[float]
    mean: list[float]
    lower: list[float]
    upper: list[float]


class ForecastOut(BaseModel):
    model_config = OUT

    status: Literal["ready", "pending", "insufficient_data", "diverged", "not_loss_like"]
    reason: str = ""
    fitted_upto_step: int | None = None
    target_step: int | None = None
    model: str | None = None
    params: dict[str, float] | None = None
    prior: str | None = None
    final: FinalValue | None = None
    curve: ForecastCurve | None = None
    p_underperform: float | None = None
    should_stop: bool = False
    fitted_at: datetime | None = None
    stale: bool = False
