#!/usr/bin/env bash
# The benchmarks (not tests): installs the project and, in its own virtualenv, MLflow (the
# anchor); needs Postgres and Redis (started if absent). Results: bench/RESULTS.md.
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
ensure_venv dev
bash scripts/services.sh
if [ ! -x bench/.work/mlflow-venv/bin/mlflow ]; then
  python3 -m venv bench/.work/mlflow-venv
  bench/.work/mlflow-venv/bin/pip install -q --disable-pip-version-check -r bench/requirements-mlflow.txt
fi
.venv/bin/python -m bench.ingest
