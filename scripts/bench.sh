#!/usr/bin/env bash
# The benchmarks (not tests): installs the project and, in its own virtualenv, MLflow (the
# anchor); needs Postgres and Redis (started if absent). Results: bench/RESULTS.md.
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
ensure_venv dev,bench
bash scripts/services.sh
if [ ! -x bench/.work/mlflow-venv/bin/mlflow ]; then
  python3 -m venv bench/.work/mlflow-venv
  bench/.work/mlflow-venv/bin/pip install -q --disable-pip-version-check -r bench/requirements-mlflow.txt
fi
.venv/bin/python -m bench.ingest
.venv/bin/python -m bench.forecast_latency
.venv/bin/python -m bench.forecast_accuracy
.venv/bin/python -m bench.scaling_accuracy
.venv/bin/python -m bench.early_stopping
.venv/bin/python -m bench.stop_calibration
.venv/bin/python -m bench.client_overhead
