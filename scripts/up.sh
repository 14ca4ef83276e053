#!/usr/bin/env bash
# Install Curvecast and start it on its embedded default (SQLite under ./.curvecast, jobs
# in-process) with a demo: simulated training runs logging live through the HTTP API.
# Extra arguments go to `curvecast up` (e.g. --port 8080).
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
ensure_venv ""
exec .venv/bin/curvecast up --demo "$@"
