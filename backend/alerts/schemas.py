"""Bodies of the stop-policy, alert-rule and alert API."""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from backend.runs.schemas import OUT, Body

EVENTS = ("should_stop", "diverged", "stalled", "missed_target")
Event = Literal["should_stop", "diverged", "stalled", "missed_target"]


class KthBest(Body):
    kth_best: int = Field(ge=1, le=1000)


class Target(Body):
    target: float


class StopPolicyIn(Body):
    """PUT body. `reference`: "best_finished", {"kth_best": k} or {"target": value}."""

    metric: str = Field(default="loss", min_length=1, max_length=256)
    mode: Literal["min", "max"] = "min"
    reference: Literal["best_finished"] | KthBest | Target = "best_finished"
    threshold: float = Field(default=0.9, gt=0, lt=1)
    min_progress: float = Field(default=0.1, ge=0, le=1)
    group: str | None = Field(default=None, max_length=256,
                              description="applies to this group only; none = whole project")

    def reference_json(self) -> dict[str, Any]:
        if isinstance(self.reference, str):
            return {"kind": "best_finished"}
        if isinstance(self.reference, KthBest):
            return {"kind": "kth_best", "k": self.reference.kth_best}
        return {"kind": "target", "target": self.reference.target}


class StopPolicyOut(BaseModel):
    model_config = OUT

    metric: str
    mode: str
    reference: dict[str, Any]
    threshold: float
    min_progress: float
    group: str | None
    updated_at: datetime


class StopPolicyList(BaseModel):
    policies: list[StopPolicyOut]


class AlertRuleIn(Body):
    events: list[Event] = Field(min_length=1)
    webhook_url: str = Field(min_length=1, max_length=2048)
    channel: Literal["webhook", "slack"] = "webhook"

    @field_validator("events")
    @classmethod
    def _unique(cls, events: list[str]) -> list[str]:
        return sorted(set(events))


class AlertRuleOut(BaseModel):
    model_config = OUT

    id: int
    events: list[str]
    webhook_url: str
    channel: str
    created_at: datetime


class AlertRuleList(BaseModel):
    rules: list[AlertRuleOut]


class AlertOut(BaseModel):
    model_config = OUT

    id: int
    event: str
    run_id: str
    rule_id: int
    fired_at: datetime
    delivered: bool
    state: str = Field(description="pending | delivered | failed")
    attempts: int
    last_error: str | None
    payload: dict[str, Any]


class AlertList(BaseModel):
    alerts: list[AlertOut]
