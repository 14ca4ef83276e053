"""Bodies of the metrics API. The batch models document the request in OpenAPI; the
request itself is validated by validate.py for speed, to the same rules."""

from pydantic import BaseModel, Field

from backend.runs.schemas import OUT

NumberOrNonFinite = float | str


class MetricRow(BaseModel):
    step: int = Field(ge=0, lt=2**62)
    values: dict[str, NumberOrNonFinite] = Field(
        description='metric name -> number, or "NaN" / "Infinity" / "-Infinity"'
    )
    time: float | None = Field(default=None, description="wall-clock unix seconds")


class MetricBatch(BaseModel):
    rows: list[MetricRow] = Field(max_length=10_000)


class IngestOut(BaseModel):
    accepted: int = Field(description="points that were new")
    duplicates: int = Field(description="points already stored (or repeated in the batch)")
    should_stop: bool


class SeriesOut(BaseModel):
    model_config = OUT

    key: str
    count: int
    step: list[int]
    value: list[float]
    time: list[float | None] = Field(description="wall-clock unix seconds of each point")
