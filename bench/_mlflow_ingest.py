"""Runs inside the MLflow virtualenv: log N points with log_batch (1000 per call, MLflow's
maximum) from T threads, one run each; prints {"points": n, "seconds": s} as JSON."""

import json
import sys
import threading
import time

from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

uri, points, keys, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
client = MlflowClient(uri)
experiment = client.create_experiment(f"bench-{time.time_ns()}")
run_ids = [client.create_run(experiment).info.run_id for _ in range(threads)]
names = ["loss", "lr", "grad_norm", "tokens"][:keys]


def work(run_id: str, n: int) -> None:
    now = int(time.time() * 1000)
    metrics: list[Metric] = []
    for step in range(n // keys):
        for k in names:
            metrics.append(Metric(k, 3.0 - step * 1e-6, now, step))
            if len(metrics) == 1000:
                client.log_batch(run_id, metrics=metrics)
                metrics = []
    if metrics:
        client.log_batch(run_id, metrics=metrics)


start = time.perf_counter()
workers = [threading.Thread(target=work, args=(r, points // threads)) for r in run_ids]
for w in workers:
    w.start()
for w in workers:
    w.join()
print(json.dumps({"points": points, "seconds": time.perf_counter() - start}))
