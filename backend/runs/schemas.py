"""Request and response bodies of the runs API (pydantic v2, the contract of API.md)."""

import math
from datetime import datetime
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    computed_field,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from backend.metrics import keys
from workers.forecast.schedule import schedule_from_spec

# Non-finite floats leave as the strings "NaN" / "Infinity" / "-Infinity" (API.md).
OUT = ConfigDict(ser_json_inf_nan="strings", from_attributes=True)


class Body(BaseModel):
    """A request body that can be stored as sent: no unknown fields, and neither a NUL
    character in any text nor a NaN or Infinity anywhere (the parser takes those non-JSON
    literals; Postgres's text and jsonb, and every computation, would not)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    @field_validator("*")
    @classmethod
    def _storable(cls, value: Any, info: ValidationInfo) -> Any:
        where = _unstorable(value, info.field_name)
        if where:  # the error handlers name ctx["field"], the very value, as the field
            raise PydanticCustomError(
                "unstorable", "{field} holds a NUL character, or a NaN or Infinity (which JSON "
                "cannot hold): it could not be stored", {"field": where})
        return value


def _unstorable(obj: Any, path: str) -> str | None:
    """The path of the first text with a NUL, or number that is NaN or infinite, in a value."""
    if isinstance(obj, str):
        return path if "\x00" in obj else None
    if isinstance(obj, float):
        return None if math.isfinite(obj) else path
    if isinstance(obj, dict):
        bad_key = next((k for k in obj if isinstance(k, str) and "\x00" in k), None)
        if bad_key is not None:
            return f"{path}.{bad_key!r}"
        items = obj.items()
    else:
        items = enumerate(obj) if isinstance(obj, list | tuple) else ()
    return next((w for k, v in items if (w := _unstorable(v, f"{path}.{k}"))), None)


NAME = r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,127}$"


class RunCreate(Body):
    project: str = Field(pattern=NAME)
    name: str | None = Field(default=None, min_length=1, max_length=256)
    group: str | None = Field(default=None, max_length=256)
    tags: list[str] = Field(default_factory=list, max_length=64)
    config: dict[str, Any] = Field(default_factory=dict)
    total_steps: int | None = Field(default=None, gt=0, lt=2**62)
    lr_schedule: dict[str, Any] | None = None
    params: float | None = Field(default=None, gt=0)
    tokens_per_step: float | None = Field(default=None, gt=0)
    tokens: float | None = Field(default=None, gt=0)
    id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._\-]{1,64}$")

    @field_validator("tags")
    @classmethod
    def _tags(cls, tags: list[str]) -> list[str]:
        for tag in tags:
            if not 0 < len(tag) <= 64:
                raise ValueError("each tag must be 1 to 64 characters")
        return tags


class RunUpdate(Body):
    status: Literal["running", "finished", "failed", "killed"]


class SeriesSummary(BaseModel):
    """One metric's stored summary. Typed, not a free dict: values of `Any` type would leave
    NaN and infinities as null instead of the strings of API.md."""

    model_config = OUT

    count: int
    first_step: int | None
    first_value: float | None
    last_step: int | None
    last_value: float | None
    min: float | None = Field(description="smallest finite value; null when there is none")
    max: float | None = Field(description="largest finite value; null when there is none")
    nonfinite: int = Field(description="points that are NaN or infinite")


class RunOut(BaseModel):
    model_config = OUT

    id: str
    project: str
    name: str
    group: str | None
    tags: list[str]
    config: dict[str, Any]
    status: str
    total_steps: int | None
    lr_schedule: dict[str, Any] | None
    params: float | None
    tokens_per_step: float | None
    tokens: float | None
    created_at: datetime
    updated_at: datetime
    last_seen: datetime
    last_step: int | None
    should_stop: bool
    stop_reason: dict[str, Any] | None
    summary: dict[str, SeriesSummary] = Field(
        default_factory=dict,
        description="per metric: count, first/last step and value, min, max (no raw points)",
    )

    @computed_field(description="the metric read as the learning rate (lr, learning_rate, "
                                "train/learning_rate, lr-AdamW, ...), or null")
    @property
    def lr_key(self) -> str | None:
        return keys.lr_key(self.summary)


class RunList(BaseModel):
    runs: list[RunOut]


class HeartbeatOut(BaseModel):
    should_stop: bool


class SignIn(Body):
    key: str = Field(min_length=1, max_length=256)


class ProjectOut(BaseModel):
    model_config = OUT

    name: str
    created_at: datetime
    n_runs: int


class ProjectList(BaseModel):
    projects: list[ProjectOut]


class KnotsSchedule(Body):
    """Piecewise-linear learning rate through (step, lr) knots."""

    knots: list[tuple[int, float]] = Field(min_length=2, max_length=10_000)
    total_steps: int | None = Field(default=None, gt=0, description="default: the last knot")

    @field_validator("knots")
    @classmethod
    def _ordered(cls, knots: list[tuple[int, float]]) -> list[tuple[int, float]]:
        steps = [s for s, _ in knots]
        if any(b < a for a, b in zip(steps, steps[1:], strict=False)) or steps[0] < 0:
            raise ValueError("knot steps must be non-negative and non-decreasing")
        if any(lr < 0 for _, lr in knots):
            raise ValueError("learning rates must be non-negative")
        if not any(lr > 0 for _, lr in knots):  # nothing trains; no law can be fitted to it
            raise ValueError("at least one learning rate must be positive")
        return knots


class NamedSchedule(Body):
    """A named schedule shape; `decay_*` apply to wsd."""

    type: Literal["cosine", "linear", "constant", "wsd", "inverse_sqrt"]
    peak_lr: float = Field(gt=0)
    warmup_steps: int = Field(default=0, ge=0)
    total_steps: int | None = Field(default=None, gt=0)
    final_lr: float = Field(default=0.0, ge=0)
    decay_start: int | None = Field(default=None, ge=0)
    decay_shape: Literal["linear", "sqrt", "cosine", "exp"] | None = None  # wsd: linear

    @model_validator(mode="after")
    def _wsd_needs_its_decay(self) -> "NamedSchedule":
        if self.type == "wsd" and self.decay_start is None:
            raise ValueError("decay_start is required for a wsd schedule")
        if self.type == "wsd" and self.decay_shape is None:
            self.decay_shape = "linear"
        return self


def validate_schedule(spec: dict[str, Any], total_steps: int | None = None) -> dict[str, Any]:
    """Check a SCHEDULE against API.md; return it normalised (defaults filled; the wsd-only
    decay_shape only on wsd, where a filled-in "linear" would not read as a cosine run's).

    Where its length is known (its own total_steps or the run's), it must also be one the
    forecaster can use: the forecaster's own parser checks it (a warmup longer than the run,
    a final lr above the peak), raising ValueError("field: why"), so the run is refused
    instead of being forecast without its schedule."""
    model = KnotsSchedule if "knots" in spec else NamedSchedule
    out = model.model_validate(spec).model_dump(mode="json", exclude_none=True)
    if model is KnotsSchedule or out.get("total_steps") or total_steps:
        schedule_from_spec({"total_steps": total_steps} | out if total_steps else out)
    return out
