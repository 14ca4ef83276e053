"""What one `log` call costs the training loop: Curvecast (server up, server down) vs MLflow.

    .venv/bin/python -m bench.client_overhead [--calls 200000] [--mlflow-calls 10000]

Each call logs a 4-key dict at the next step and is timed on its own (bench/_timing.py).
"Server up" is `curvecast up` on a fresh Postgres database; "server down" points the client at
a port nobody listens on, so every row goes to the spool only. MLflow (its own virtualenv, made
by scripts/bench.sh) logs to an `mlflow server` on another fresh database, synchronously and
with `synchronous=False`. Ratios compare medians with Curvecast's server-up median.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

import curvecast

from bench._timing import measure
from bench.servers import (
    ADMIN_KEY,
    ROOT,
    curvecast_server,
    free_port,
    fresh_database,
    mlflow_python,
    mlflow_server,
)


def row(label: str, t: dict[str, float], note: str) -> None:
    numbers = "".join(f"{t[q]:>11.2f}" for q in ("median", "p99", "p99.9", "mean"))
    print(f"{label:<40}{t['calls']:>9,}{numbers}  {note}")


def run_curvecast(label: str, url: str, calls: int, spool: Path, timeout: float) -> dict:
    run = curvecast.init(project="bench", url=url, api_key=ADMIN_KEY, spool_dir=spool)
    timing = measure(lambda values, step: run.log(values, step=step), calls)
    started = time.perf_counter()
    stats = run.finish(timeout=timeout)
    row(
        label,
        timing,
        f"finish {time.perf_counter() - started:.1f}s: {stats.confirmed:,} "
        f"confirmed, {stats.unconfirmed:,} left in the spool, {stats.dropped:,} dropped",
    )
    return timing


def run_mlflow(calls: int) -> dict[str, dict]:
    with mlflow_server(fresh_database("bench_client_overhead_mlflow")) as uri:
        done = subprocess.run(
            [mlflow_python(), "-m", "bench._mlflow_overhead", uri, str(calls)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
    results = json.loads(done.stdout.splitlines()[-1])
    for label, timing in results.items():
        row(label, timing, f"end_run {timing['finish_s']:.1f}s")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument(
        "--mlflow-calls", type=int, default=10_000, help="async calls; sync makes a tenth"
    )
    args = parser.parse_args()
    heads = "".join(f"{h:>11}" for h in ("median", "p99", "p99.9", "mean"))
    print(f"{'µs per log call':<40}{'calls':>9}{heads}")
    with tempfile.TemporaryDirectory() as tmp:
        with curvecast_server(fresh_database("bench_client_overhead")) as url:
            up = run_curvecast("curvecast (server up)", url, args.calls, Path(tmp) / "up", 300)
        down = f"http://127.0.0.1:{free_port()}"
        run_curvecast("curvecast (server down)", down, args.calls, Path(tmp) / "down", 0.5)
    for label, timing in run_mlflow(args.mlflow_calls).items():
        print(f"{label} / curvecast (server up), median: {timing['median'] / up['median']:.0f}x")


if __name__ == "__main__":
    main()
