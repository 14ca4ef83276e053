"""Ingest and read throughput of Curvecast on Postgres, against MLflow on the same Postgres.

    .venv/bin/python -m bench.ingest [--points 2000000] [--mlflow-points 100000]

1. Curvecast: `curvecast up --workers 2` on a fresh Postgres database, publishing its
   forecast jobs to Redis (no worker runs, so the figure is the API's alone). T client
   threads, one run each, POST 10,000-row batches (bodies encoded before the clock
   starts) with K metrics per row.
2. MLflow: `mlflow server` (2 workers) on another fresh database of the same Postgres,
   MlflowClient.log_batch with 1,000 metrics per call (its maximum), same T and K.
3. Read-back: a 1,000,000-point series downsampled to 2,000 points, 30 times; the server's
   own time from its Server-Timing header, and the client's round trip.
Prints points/s for both and their ratio; results go to bench/RESULTS.md by hand.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import threading
import time

import httpx
import orjson

from bench.servers import (
    ADMIN_KEY,
    ROOT,
    curvecast_server,
    fresh_database,
    mlflow_python,
    mlflow_server,
)

ROWS_PER_BATCH = 10_000
NAMES = ["loss", "lr", "grad_norm", "tokens"]


def bodies(points: int, keys: int) -> list[bytes]:
    steps = points // keys
    out = []
    for start in range(0, steps, ROWS_PER_BATCH):
        rows = [{"step": s, "values": {k: 3.0 - s * 1e-6 for k in NAMES[:keys]}}
                for s in range(start, min(start + ROWS_PER_BATCH, steps))]
        out.append(orjson.dumps({"rows": rows}))
    return out


def curvecast_ingest(base: str, points: int, keys: int, threads: int) -> float:
    """Points per second accepted, T threads each logging its share to its own run."""
    headers = {"Authorization": f"Bearer {ADMIN_KEY}", "Content-Type": "application/json"}
    work = []
    with httpx.Client(base_url=base, headers=headers, timeout=120) as c:
        for t in range(threads):
            run = c.post("/api/v1/runs", json={"project": "bench-ingest", "name": f"t{t}"})
            work.append((run.json()["id"], bodies(points // threads, keys)))
    accepted = [0] * threads

    def send(i: int) -> None:
        run_id, batches = work[i]
        with httpx.Client(base_url=base, headers=headers, timeout=120) as c:
            for body in batches:
                r = c.post(f"/api/v1/runs/{run_id}/metrics", content=body)
                r.raise_for_status()
                accepted[i] += r.json()["accepted"]

    start = time.perf_counter()
    pool = [threading.Thread(target=send, args=(i,)) for i in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    seconds = time.perf_counter() - start
    assert sum(accepted) == (points // threads // keys) * keys * threads, accepted
    return sum(accepted) / seconds


def mlflow_ingest(uri: str, points: int, keys: int, threads: int) -> float:
    out = subprocess.run(
        [mlflow_python(), str(ROOT / "bench" / "_mlflow_ingest.py"), uri, str(points),
         str(keys), str(threads)], check=True, capture_output=True, text=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return result["points"] / result["seconds"]


def read_back(base: str, repeats: int = 30) -> dict[str, float]:
    """p50/p95 of a 1,000,000-point series read downsampled to 2,000 points."""
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    with httpx.Client(base_url=base, headers=headers, timeout=120) as c:
        run_id = c.post("/api/v1/runs", json={"project": "bench-read", "name": "long"}).json()["id"]
        for body in bodies(1_000_000, 1):
            c.post(f"/api/v1/runs/{run_id}/metrics", content=body,
                   headers={"Content-Type": "application/json"}).raise_for_status()
        server, client = [], []
        for _ in range(repeats):
            start = time.perf_counter()
            r = c.get(f"/api/v1/runs/{run_id}/metrics/loss", params={"max_points": 2000})
            client.append((time.perf_counter() - start) * 1000)
            r.raise_for_status()
            assert r.json()["count"] == 1_000_000 and len(r.json()["step"]) <= 2000
            server.append(float(r.headers["server-timing"].split("dur=")[1]))
    q = statistics.quantiles
    return {"server_p50": statistics.median(server), "server_p95": q(server, n=20)[18],
            "client_p50": statistics.median(client), "client_p95": q(client, n=20)[18]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=2_000_000)
    parser.add_argument("--mlflow-points", type=int, default=100_000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/13")
    parser.add_argument("--workers", type=int, default=2, help="Curvecast API processes")
    args = parser.parse_args()

    results: dict[str, float] = {}
    db = fresh_database("curvecast_bench")
    with curvecast_server(db, args.redis, workers=args.workers) as base:
        for keys in (4, 1):
            results[f"curvecast_{keys}key"] = curvecast_ingest(base, args.points, keys,
                                                               args.threads)
            print(f"Curvecast  {keys} metric(s)/row: {results[f'curvecast_{keys}key']:>10,.0f}"
                  " points/s", flush=True)
        reads = read_back(base)
    with mlflow_server(fresh_database("mlflow_bench")) as uri:
        for keys in (4, 1):
            results[f"mlflow_{keys}key"] = mlflow_ingest(uri, args.mlflow_points, keys,
                                                         args.threads)
            print(f"MLflow     {keys} metric(s)/row: {results[f'mlflow_{keys}key']:>10,.0f}"
                  " points/s", flush=True)
    for keys in (4, 1):
        ratio = results[f"curvecast_{keys}key"] / results[f"mlflow_{keys}key"]
        print(f"ratio Curvecast/MLflow, {keys} metric(s)/row: {ratio:.1f}x")
    print("read 1,000,000 points downsampled to 2,000: server p50 {server_p50:.1f} ms, "
          "p95 {server_p95:.1f} ms; round trip p50 {client_p50:.1f} ms, "
          "p95 {client_p95:.1f} ms".format(**reads))


if __name__ == "__main__":
    main()
