"""Aggregates of newly inserted points: per-series summary deltas and per-block extremes.

Pure numpy over the rows that the insert reported as new, so the stored summaries and blocks
are updated by merging, never by rescanning a series.
"""

from dataclasses import dataclass

import numpy as np

# Block sizes in steps: 256, 4,096, 65,536. Reads pick the finest that fits the budget;
# shorter series are read point by point.
BLOCK_LEVELS = (1, 2, 3)


def block_size(level: int) -> int:
    return 16 ** (level + 1)


@dataclass
class NewPoints:
    series_id: np.ndarray  # int64
    step: np.ndarray  # int64
    value: np.ndarray  # float64, may hold NaN / inf

    @classmethod
    def from_rows(cls, rows: list[tuple[int, int, float | None]]) -> "NewPoints":
        if not rows:
            empty = np.empty(0, dtype=np.int64)
            return cls(empty, empty, np.empty(0))
        sid, step, value = zip(*rows, strict=True)
        val = np.array([np.nan if v is None else v for v in value], dtype=np.float64)
        return cls(np.array(sid, dtype=np.int64), np.array(step, dtype=np.int64), val)

    def __len__(self) -> int:
        return len(self.step)


def _starts(keys: list[np.ndarray]) -> np.ndarray:
    """Start index of each run of equal keys (the rows are already in key order)."""
    change = np.zeros(len(keys[0]), dtype=bool)
    change[0] = True
    for k in keys:
        change[1:] |= k[1:] != k[:-1]
    return np.flatnonzero(change)


def _first_where(mask: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Index of the first True of each group (any valid index when it has none: the callers
    mark those groups as having no such row)."""
    index = np.where(mask, np.arange(len(mask)), len(mask) - 1)
    return np.minimum.reduceat(index, starts)


def _extremes(step: np.ndarray, value: np.ndarray, starts: np.ndarray) -> dict[str, list]:
    """Per group (rows grouped, steps ascending): n, first/last, finite min/max, first NaN/inf.

    Vectorised without sorting: a 10,000-row batch is a few array passes whatever the number
    of groups.
    """
    n_rows = len(step)
    counts = np.diff(np.append(starts, n_rows))
    finite = np.isfinite(value)
    any_finite = np.logical_or.reduceat(finite, starts)
    any_nonfinite = ~np.logical_and.reduceat(finite, starts)
    low = np.where(finite, value, np.inf)
    high = np.where(finite, value, -np.inf)
    i_min = _first_where(low == np.repeat(np.minimum.reduceat(low, starts), counts), starts)
    i_max = _first_where(high == np.repeat(np.maximum.reduceat(high, starts), counts), starts)
    i_bad = _first_where(~finite, starts)
    last = np.append(starts[1:], n_rows) - 1

    def opt(arr: np.ndarray, present: np.ndarray) -> list:
        return [x if ok else None for x, ok in zip(arr.tolist(), present.tolist(), strict=True)]

    return {
        "n": counts.tolist(),
        "n_nonfinite": np.add.reduceat((~finite).astype(np.int64), starts).tolist(),
        "first_step": step[starts].tolist(),
        "first_value": value[starts].tolist(),
        "last_step": step[last].tolist(),
        "last_value": value[last].tolist(),
        "min_step": opt(step[i_min], any_finite),
        "min_value": opt(value[i_min], any_finite),
        "max_step": opt(step[i_max], any_finite),
        "max_value": opt(value[i_max], any_finite),
        "nonfinite_step": opt(step[i_bad], any_nonfinite),
        "nonfinite_value": opt(value[i_bad], any_nonfinite),
    }


def _in_order(new: NewPoints) -> NewPoints:
    """The points ordered by (series, step): then every grouping below is a run of rows."""
    order = np.lexsort((new.step, new.series_id))
    return NewPoints(new.series_id[order], new.step[order], new.value[order])


def series_deltas(new: NewPoints) -> list[dict]:
    """One dict per series touched: what the new points add to its summary row."""
    if not len(new):
        return []
    new = _in_order(new)
    starts = _starts([new.series_id])
    agg = _extremes(new.step, new.value, starts)
    sids = new.series_id[starts].tolist()
    return [{"series_id": sid, **{k: v[i] for k, v in agg.items()}} for i, sid in enumerate(sids)]


BLOCK_FIELDS = ("n", "min_step", "min_value", "max_step", "max_value",
                "nonfinite_step", "nonfinite_value")


def block_deltas(new: NewPoints) -> list[dict]:
    """One dict per (series, level, block) touched, with that block's new extremes."""
    rows: list[dict] = []
    if not len(new):
        return rows
    new = _in_order(new)
    for level in BLOCK_LEVELS:
        block = new.step // block_size(level)
        starts = _starts([new.series_id, block])
        agg = _extremes(new.step, new.value, starts)
        sids, blocks = new.series_id[starts].tolist(), block[starts].tolist()
        for i, (sid, blk) in enumerate(zip(sids, blocks, strict=True)):
            rows.append({"series_id": sid, "level": level, "block": blk,
                         **{k: agg[k][i] for k in BLOCK_FIELDS}})
    return rows
