#!/usr/bin/env bash
# The test command: install everything the suite needs, make sure PostgreSQL, Redis and
# Chromium are there, then run every test (API, workers, client, science, browser) on both
# cores. Extra arguments go to pytest.
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
ensure_venv dev
bash scripts/services.sh
# Debian packages the suite drives: chromium (dashboard tests), docker-compose (checks
# docker-compose.yml; no engine is needed for `config`).
missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v docker-compose >/dev/null || docker compose version >/dev/null 2>&1 || missing+=(docker-compose)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing ${missing[*]} from Debian's packages"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}") >/dev/null
  else
    echo "error: the tests need ${missing[*]} (e.g. sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
fi
exec .venv/bin/python -m pytest -n "${TEST_WORKERS:-2}" --dist loadfile "$@"
