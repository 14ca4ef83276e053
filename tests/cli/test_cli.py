"""The `curvecast` command: keys create, migrate, and up refusing an unmigrated database."""

import subprocess
import sys
import uuid

import psycopg

from tests.conftest import PG_ADMIN_URL


def curvecast(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "backend", *args], capture_output=True,
                          text=True, timeout=120)


def test_keys_create_prints_a_key_scoped_to_its_project(client, pg_url, project):
    done = curvecast("keys", "create", "--project", project, "--db", pg_url)
    assert done.returncode == 0, done.stderr
    key = done.stdout.strip()
    assert key.startswith("cc_")
    mine = client.post("/api/v1/runs", json={"project": project},
                       headers={"Authorization": f"Bearer {key}"})
    other = client.post("/api/v1/runs", json={"project": project + "-x"},
                        headers={"Authorization": f"Bearer {key}"})
    assert (mine.status_code, other.status_code) == (201, 404)


def test_up_refuses_an_unmigrated_postgres_until_migrate_runs():
    name = f"curvecast_cli_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    try:
        refused = curvecast("up", "--db", url, "--port", "1")
        assert refused.returncode == 2 and "curvecast migrate" in refused.stderr
        migrated = curvecast("migrate", "--db", url)
        assert migrated.returncode == 0, migrated.stderr
        assert "schema at" in migrated.stderr
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
