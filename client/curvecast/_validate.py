"""The slow paths of argument checking: the first sight of a key, odd value types, run fields.

`Run.log` handles the common case inline (float/int values, keys it has seen); everything else
comes here and either returns the value the API wants or raises at the caller's line.
"""

from __future__ import annotations

import json
import numbers
import operator
import re
from collections.abc import Mapping
from typing import Any

MAX_KEY_LENGTH = 256  # the server's default; longer names would be refused later, silently
MAX_STEP = 2**62
STATUSES = ("finished", "failed", "killed")
RUN_ID = re.compile(r"[A-Za-z0-9._\-]{1,64}")
PROJECT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._\-]{0,127}")


def check_key(key: object) -> None:
    if type(key) is not str:
        raise TypeError(f"metric names must be str, not {type(key).__name__}: {key!r}")
    if not 0 < len(key) <= MAX_KEY_LENGTH or not key.isprintable():
        raise ValueError(f"metric name {key!r}: use 1 to {MAX_KEY_LENGTH} printable characters")


def check_step(step: object) -> int:
    if isinstance(step, bool):
        raise TypeError("step must be an int, not bool")
    try:
        step = operator.index(step)  # int, numpy integers, anything that is truly integral
    except TypeError:
        raise TypeError(f"step must be an int, not {type(step).__name__}: {step!r}") from None
    if not 0 <= step < MAX_STEP:
        raise ValueError(f"step must be from 0 to 2**62, got {step}")
    return step


def coerce_value(key: str, value: object) -> float | int | str:
    """A value that is not exactly float or int: numpy scalars pass, bools and text do not."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        hint = " (for a tensor, log .item())" if hasattr(value, "item") else ""
        raise TypeError(f"metric {key!r}: {type(value).__name__} {value!r} is not a number{hint}")
    number = float(value)
    return nonfinite(number) if number - number else number


def nonfinite(value: float) -> str:
    """NaN and infinities travel as the strings API.md names (bare NaN is not JSON)."""
    if value != value:
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def check_status(status: object) -> str:
    if status not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}; got {status!r}")
    return status  # type: ignore[return-value]


def run_body(fields: Mapping[str, Any]) -> bytes:
    """The POST /runs body, checked here so a typo fails at `init` even with the server away."""
    body = {k: v for k, v in fields.items() if v is not None}
    if not isinstance(body.get("project"), str) or not PROJECT.fullmatch(body["project"]):
        raise ValueError(
            f"project must be 1 to 128 of letters, digits, '.', '_', '-' (starting with a "
            f"letter or digit); got {fields.get('project')!r}"
        )
    if not RUN_ID.fullmatch(body["id"]):
        raise ValueError(
            f"id must be 1 to 64 of letters, digits, '.', '_', '-'; got {body['id']!r}"
        )
    for name in ("name", "group"):
        if name in body and not isinstance(body[name], str):
            raise TypeError(f"{name} must be a str, not {type(body[name]).__name__}")
    tags = body.get("tags", [])
    if isinstance(tags, str) or not all(isinstance(t, str) for t in tags):
        raise TypeError("tags must be a list of str")
    body["tags"] = list(tags)
    for name in ("config", "lr_schedule"):
        if name in body and not isinstance(body[name], Mapping):
            raise TypeError(f"{name} must be a dict, not {type(body[name]).__name__}")
    total = body.get("total_steps")
    if total is not None:
        if isinstance(total, bool) or not isinstance(total, numbers.Integral) or total <= 0:
            raise ValueError(f"total_steps must be a positive int; got {total!r}")
        body["total_steps"] = int(total)
    for name in ("params", "tokens_per_step", "tokens"):
        if name in body:
            value = body[name]
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0:
                raise ValueError(f"{name} must be a positive number; got {value!r}")
            body[name] = float(value)
    try:
        return json.dumps(body, allow_nan=False, separators=(",", ":")).encode()
    except (TypeError, ValueError) as exc:
        raise TypeError(f"config must hold only JSON values (no NaN): {exc}") from None
