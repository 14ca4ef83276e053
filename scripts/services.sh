#!/usr/bin/env bash
# Make sure PostgreSQL and Redis answer on their usual local ports, starting them if they
# do not: first the system's own services, then throwaway ones under .curvecast/services.
# Prints what it did; exits non-zero naming what to install when it cannot.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="$ROOT/.curvecast/services"
PG_PORT="${PG_PORT:-5432}"
REDIS_PORT="${REDIS_PORT:-6379}"

pg_up() { pg_isready -q -h 127.0.0.1 -p "$PG_PORT" 2>/dev/null; }
redis_up() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; }

start_postgres() {
  if command -v pg_ctlcluster >/dev/null && ls /etc/postgresql/*/main >/dev/null 2>&1; then
    local ver; ver=$(ls /etc/postgresql | sort -V | tail -n1)
    pg_ctlcluster --skip-systemctl-redirect "$ver" main start 2>/dev/null || true
    for _ in $(seq 30); do pg_up && return 0; sleep 0.5; done
  fi
  local bindir; bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)
  [ -n "$bindir" ] || bindir=$(dirname "$(command -v initdb 2>/dev/null || echo /nonexistent/x)")
  if [ ! -x "$bindir/initdb" ]; then
    echo "error: PostgreSQL is not running on 127.0.0.1:$PG_PORT and is not installed." >&2
    echo "       Install it (Debian/Ubuntu: apt-get install postgresql; macOS: brew install postgresql)" >&2
    return 1
  fi
  local run=(); [ "$(id -u)" = 0 ] && run=(runuser -u postgres --)
  mkdir -p "$STATE"; [ "$(id -u)" = 0 ] && chown postgres "$STATE"
  if [ ! -d "$STATE/pg" ]; then
    "${run[@]}" "$bindir/initdb" -D "$STATE/pg" -U postgres --auth=trust >/dev/null
  fi
  "${run[@]}" "$bindir/pg_ctl" -D "$STATE/pg" -l "$STATE/pg.log" -w \
    -o "-p $PG_PORT -k /tmp -c listen_addresses=127.0.0.1" start >/dev/null
  "$bindir/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -tc "SELECT 1 FROM pg_database WHERE datname='test'" | grep -q 1 \
    || "$bindir/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres test
  echo "started a throwaway PostgreSQL in $STATE/pg"
}

start_redis() {
  if ! command -v redis-server >/dev/null; then
    echo "error: Redis is not running on 127.0.0.1:$REDIS_PORT and redis-server is not installed." >&2
    echo "       Install it (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis)" >&2
    return 1
  fi
  mkdir -p "$STATE"
  redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" \
    --appendonly no --dir "$STATE" --logfile "$STATE/redis.log"
  for _ in $(seq 20); do redis_up && { echo "started redis-server on $REDIS_PORT"; return 0; }; sleep 0.25; done
  echo "error: redis-server did not answer; see $STATE/redis.log" >&2
  return 1
}

pg_up && echo "PostgreSQL answers on 127.0.0.1:$PG_PORT" || start_postgres
redis_up && echo "Redis answers on 127.0.0.1:$REDIS_PORT" || start_redis
