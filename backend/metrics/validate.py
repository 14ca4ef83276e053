"""Turn a metrics request body into flat columns, or a 4xx naming the first bad field.

Hand-written rather than a pydantic model because a 10,000-row batch must validate in a few
milliseconds; every rule here is in API.md. The common batch (every row `{step, values}` with
the same metric names and plain numbers) is checked column by column in C-speed passes; any
other batch, and every invalid one, is checked row by row, which also finds the first bad
field to name.
"""

import math
from dataclasses import dataclass

import numpy as np
import orjson

from backend.errors import BadRequest, PayloadTooLarge, Unprocessable

NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
MAX_STEP = 2**62


@dataclass
class Batch:
    """Validated points as parallel arrays, one entry per (name, step) as sent (duplicates
    not yet removed)."""

    names: list[str]  # the distinct metric names
    key: np.ndarray  # int64 index into names
    step: np.ndarray  # int64
    value: np.ndarray  # float64, NaN and infinities included
    time: np.ndarray  # float64 unix seconds; NaN where the row had none

    @property
    def max_step(self) -> int | None:
        return int(self.step.max()) if len(self.step) else None


def parse_batch(raw: bytes, max_rows: int, max_key_length: int) -> Batch:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"body is not valid JSON: {exc}", "body") from None
    if not isinstance(body, dict):
        raise Unprocessable("body must be a JSON object with a 'rows' list", "body")
    rows = body.get("rows")
    if not isinstance(rows, list):
        raise Unprocessable("'rows' must be a list of {step, values, time}", "rows")
    if len(rows) > max_rows:
        raise PayloadTooLarge(f"{len(rows)} rows in one request; the limit is {max_rows}", "rows")
    unknown = set(body) - {"rows"}
    if unknown:
        raise Unprocessable("unknown field", sorted(unknown)[0])

    return _uniform(rows, max_key_length) or _row_by_row(rows, max_key_length)


def _valid_name(name: str, max_key_length: int) -> bool:
    return 0 < len(name) <= max_key_length and name.isprintable()


def _uniform(rows: list, max_key_length: int) -> Batch | None:
    """The fast path, or None when the batch is not the common shape or not valid."""
    try:
        if not rows or not all(map((2).__eq__, map(len, rows))):
            return None
        steps = [r["step"] for r in rows]
        values = [r["values"] for r in rows]
    except (TypeError, KeyError):
        return None
    if set(map(type, steps)) != {int} or set(map(type, values)) != {dict}:
        return None
    names = list(values[0])
    if not names or not all(map(values[0].keys().__eq__, map(dict.keys, values))):
        return None
    if not all(_valid_name(n, max_key_length) for n in names):
        return None
    try:
        step = np.array(steps, dtype=np.int64)
    except OverflowError:
        return None
    if step.min() < 0 or step.max() >= MAX_STEP:
        return None
    columns = []
    for name in names:
        column = [v[name] for v in values]
        if not set(map(type, column)) <= {float, int}:
            return None
        columns.append(np.array(column, dtype=np.float64))
    n, m = len(rows), len(names)
    return Batch(names=names, key=np.tile(np.arange(m, dtype=np.int64), n),
                 step=np.repeat(step, m), value=np.column_stack(columns).ravel(),
                 time=np.full(n * m, np.nan))


def _row_by_row(rows: list, max_key_length: int) -> Batch:
    keys: list[str] = []
    steps: list[int] = []
    vals: list[float] = []
    times: list[float] = []
    index: dict[str, int] = {}  # names repeat on every row: check each one once
    for i, row in enumerate(rows):
        if type(row) is not dict:
            raise Unprocessable("each row must be an object", f"rows[{i}]")
        step = row.get("step")
        if type(step) is not int or not 0 <= step < MAX_STEP:
            raise Unprocessable("step must be an integer from 0 to 2^62", f"rows[{i}].step")
        values = row.get("values")
        if type(values) is not dict or not values:
            raise Unprocessable("values must be a non-empty object", f"rows[{i}].values")
        t = _row_time(row, i) if len(row) != 2 else None
        for name, v in values.items():
            if name not in index:
                if not _valid_name(name, max_key_length):
                    raise Unprocessable(
                        f"metric names are 1 to {max_key_length} printable characters",
                        f"rows[{i}].values",
                    )
                index[name] = len(index)
            tv = type(v)
            if tv is float or tv is int:
                fv = float(v)
            elif tv is str and v in NONFINITE:
                fv = NONFINITE[v]
            else:
                raise Unprocessable(
                    'must be a number or "NaN", "Infinity", "-Infinity"',
                    f"rows[{i}].values.{name}",
                )
            keys.append(index[name])
            steps.append(step)
            vals.append(fv)
            times.append(math.nan if t is None else t)
    return Batch(names=list(index), key=np.array(keys, dtype=np.int64),
                 step=np.array(steps, dtype=np.int64), value=np.array(vals, dtype=np.float64),
                 time=np.array(times, dtype=np.float64))


def _row_time(row: dict, i: int) -> float | None:
    """The optional wall-clock time of a row; any other extra field is an error."""
    extra = sorted(set(row) - {"step", "values", "time"})
    if extra:
        raise Unprocessable("unknown field", f"rows[{i}].{extra[0]}")
    t = row.get("time")
    if t is not None and (type(t) not in (int, float) or not math.isfinite(t)):
        raise Unprocessable("time must be a finite number (unix seconds)", f"rows[{i}].time")
    return t
