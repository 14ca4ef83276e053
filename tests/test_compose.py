"""docker-compose.yml is valid for Compose and wires the services DESIGN.md names."""

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _compose() -> list[str]:
    docker = shutil.which("docker")
    plugin = docker and subprocess.run([docker, "compose", "version"], capture_output=True)
    if plugin and plugin.returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    assert legacy, "neither `docker compose` nor `docker-compose`: scripts/test.sh installs it"
    return [legacy]


def test_compose_config_accepts_the_file_and_has_every_service():
    result = subprocess.run([*_compose(), "-f", "docker-compose.yml", "config", "--services"],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert set(result.stdout.split()) == {"postgres", "redis", "migrate", "api", "worker", "beat"}
