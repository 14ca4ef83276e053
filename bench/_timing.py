"""Per-call timing shared by bench/client_overhead.py and the MLflow side it runs in MLflow's
own virtualenv (stdlib only, so both interpreters can import it)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

LogFn = Callable[[dict[str, float], int], object]


def measure(log: LogFn, calls: int) -> dict[str, float]:
    """Microseconds per `log(values, step)` call, 4 keys a call, in a tight loop (the worst case
    for a background thread competing for the GIL); perf_counter_ns's own ~50 ns included."""
    timer = time.perf_counter_ns
    spent = [0] * calls
    for step in range(calls):
        values = {"loss": 3.0 - step * 1e-6, "lr": 1e-3, "grad_norm": 0.5, "tokens": step * 512.0}
        start = timer()
        log(values, step)
        spent[step] = timer() - start
    ordered = sorted(spent)
    return {
        "calls": calls,
        "median": ordered[calls // 2] / 1e3,
        "p99": ordered[int(calls * 0.99)] / 1e3,
        "p99.9": ordered[int(calls * 0.999)] / 1e3,
        "mean": statistics.fmean(spent) / 1e3,
    }
