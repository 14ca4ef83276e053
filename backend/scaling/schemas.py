"""Request and response bodies of the scaling-law API (pydantic v2, the contract of API.md)."""

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from backend.runs.schemas import OUT, Body

# The laws of workers.forecast.scaling_laws.LAWS, spelled out so the OpenAPI lists them.
Law = Literal["chinchilla", "compute", "data_constrained", "overtraining", "loglinear"]
HPARAM_PREFIX = "hparam:"
Status = Literal["pending", "ready", "insufficient_data", "degenerate", "failed"]
# What a training run can be: beyond these a law's powers under- or overflow (a denormal FLOP
# budget made the optimal N zero, a 500) and no run ever was.
Size = Annotated[float, Field(ge=1.0, le=1e30)]  # parameters or tokens
Flops = Annotated[float, Field(ge=1.0, le=1e40)]


class RunSelector(Body):
    """Which of the project's runs a fit uses: all of them, or those in `group` with every tag."""

    group: str | None = Field(default=None, max_length=256)
    tags: list[str] = Field(default_factory=list, max_length=64)


class ScalingFitIn(Body):
    metric: str = Field(min_length=1, max_length=256, description="the loss-like metric fitted")
    law: Law = "chinchilla"
    runs: RunSelector = Field(default_factory=RunSelector)
    include_unfinished: bool = Field(
        default=False,
        description="also use unfinished runs, at their forecast final value and its spread",
    )


class HparamLawIn(Body):
    metric: str = Field(min_length=1, max_length=256, description="the metric each sweep minimises")
    # The law is stored as "hparam:<key>" in a 32-character column.
    hparam: str = Field(
        min_length=1, max_length=32 - len(HPARAM_PREFIX), pattern=r"^[A-Za-z0-9_.\-]+$",
        description="a numeric key of run.config, e.g. 'lr' or 'batch_size'",
    )
    runs: RunSelector = Field(default_factory=RunSelector)


class FitCreated(BaseModel):
    id: int
    status: Status


class ScalingFitSummary(BaseModel):
    model_config = OUT

    id: int
    project: str
    status: Status
    reason: str
    law: str
    metric: str
    runs: RunSelector
    include_unfinished: bool
    n_runs: int
    created_at: datetime
    fitted_at: datetime | None


class ScalingFitOut(ScalingFitSummary):
    params: dict[str, float | None] = Field(default_factory=dict)
    intervals: dict[str, list[float | None]] = Field(
        default_factory=dict, description="per parameter: [lower, upper] at `level`"
    )
    level: float | None = None
    inputs: list[dict[str, Any]] = Field(
        default_factory=list,
        description="the points fitted: one per run (per sweep for hyperparameter laws)",
    )


class ScalingFitList(BaseModel):
    fits: list[ScalingFitSummary]


class PredictIn(Body):
    params: Size = Field(description="model parameters N")
    tokens: Size = Field(description="training tokens D")
    unique_tokens: Size | None = Field(default=None, description="for data_constrained")
    flops: Flops | None = Field(default=None, description="training compute; else 6ND")


class PredictOut(BaseModel):
    model_config = OUT

    quantity: str = Field(description="the metric predicted, or the hyperparameter's optimum")
    mean: float
    lower: float
    upper: float
    level: float


class FrontierPoint(BaseModel):
    model_config = OUT

    compute: float
    params: float | None = Field(description="compute-optimal N; null for laws of C alone")
    tokens: float | None
    loss: float
    lower: float
    upper: float
    params_interval: list[float] | None = None
    tokens_interval: list[float] | None = None
    status: Literal["ready", "no_allocation"] = Field(
        default="ready",
        description="'no_allocation' for laws of C alone: loss is L(C), params and tokens null",
    )
    reason: str = Field(default="", description="why params and tokens are null; else empty")


class FrontierOut(BaseModel):
    points: list[FrontierPoint]
