"""Min/max-preserving downsampling (pure numpy).

The step range is cut into equal-width buckets and each bucket keeps its lowest and highest
finite point and its first non-finite one, plus the series' first and last points: a
one-step spike or a NaN is never averaged away, whatever the budget.
"""

import numpy as np


def _first_per_bucket(sort_key: np.ndarray, bucket: np.ndarray) -> np.ndarray:
    order = np.lexsort((sort_key, bucket))
    _, first = np.unique(bucket[order], return_index=True)
    return order[first]


def minmax_downsample(
    steps: np.ndarray, values: np.ndarray, max_points: int
) -> tuple[np.ndarray, np.ndarray]:
    """At most `max_points` of the (step-sorted) points, keeping every bucket's extremes."""
    n = len(steps)
    if n <= max_points:
        return steps, values
    finite = np.isfinite(values)
    has_bad = not finite.all()
    per_bucket = 3 if has_bad else 2
    n_buckets = max(1, (max_points - 2) // per_bucket)
    s0, span = int(steps[0]), int(steps[-1]) - int(steps[0]) + 1
    bucket = ((steps - s0) * n_buckets) // span
    keep = [np.array([0, n - 1])]
    if finite.any():
        fin_idx = np.flatnonzero(finite)
        fb, fv = bucket[fin_idx], values[fin_idx]
        keep.append(fin_idx[_first_per_bucket(fv, fb)])
        keep.append(fin_idx[_first_per_bucket(-fv, fb)])
    if has_bad:
        bad_idx = np.flatnonzero(~finite)
        keep.append(bad_idx[_first_per_bucket(steps[bad_idx], bucket[bad_idx])])
    idx = np.unique(np.concatenate(keep))
    return steps[idx], values[idx]
