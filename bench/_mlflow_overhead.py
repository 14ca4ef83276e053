"""Runs inside the MLflow virtualenv: `python -m bench._mlflow_overhead URI CALLS`. Times
`mlflow.log_metrics` per call, synchronous (CALLS / 10 calls: each is a round trip) and with
`synchronous=False` (CALLS); prints JSON
{label: timing} (see bench/_timing.py), plus how long end_run waited for the async writes."""

import json
import sys
import time

import mlflow

from bench._timing import measure

uri, calls = sys.argv[1], int(sys.argv[2])
mlflow.set_tracking_uri(uri)
mlflow.set_experiment(f"client-overhead-{time.time_ns()}")
results = {}
for label, synchronous, n in (
    ("mlflow log_metrics (sync)", True, max(calls // 10, 100)),
    ("mlflow log_metrics (synchronous=False)", False, calls),
):
    with mlflow.start_run():
        results[label] = measure(
            lambda v, s, sync=synchronous: mlflow.log_metrics(v, step=s, synchronous=sync), n
        )
        started = time.perf_counter()
    results[label]["finish_s"] = time.perf_counter() - started
print(json.dumps(results))
