"""A regular (non-editable) install carries the dashboard and the migrations: the built wheel
holds frontend/ as backend/dashboard/ and migrations/ as backend/migrations/, and `curvecast up`
from that wheel alone migrates its SQLite file and serves the dashboard. A checkout finds the
same packages through the editable install, and an install without the dashboard says so."""

import logging
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from backend import app as app_module
from backend import migrate
from backend.app import create_app, dashboard_dir
from backend.jobs import InProcessDispatcher
from backend.settings import Settings
from tests.conftest import free_port
from tests.waiting import wait_healthy

ROOT = Path(__file__).resolve().parents[2]
# What a build must not see: generated, cached or installed things of the checkout.
NOT_SOURCE = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__",
                                    ".curvecast", ".*_cache", "node_modules", "screenshots")


def _files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel `pip install .` would install, built from a copy of the checkout (an in-place
    build writes build/ into it, and a stale build/lib can put deleted files into a wheel)."""
    work = tmp_path_factory.mktemp("wheel")
    shutil.copytree(ROOT, work / "src", ignore=NOT_SOURCE)
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
         "-q", "-w", str(work / "dist"), str(work / "src")],
        capture_output=True, text=True, timeout=120)
    assert built.returncode == 0, (
        "building the wheel failed (the dev extra installs the setuptools it needs):\n"
        + built.stdout + built.stderr)
    (path,) = (work / "dist").glob("curvecast-*.whl")
    return path


def test_the_wheel_carries_the_dashboard_the_migrations_and_every_package(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"backend/dashboard/index.html", "backend/dashboard/js/main.js",
            "backend/dashboard/css/app.css"} <= names
    dashboard = {"backend/dashboard/" + f for f in _files(ROOT / "frontend")}
    assert dashboard <= names, sorted(dashboard - names)
    migrations = {"backend/migrations/" + f for f in _files(ROOT / "migrations")}
    assert "backend/migrations/env.py" in migrations and migrations <= names, \
        sorted(migrations - names)
    # pyproject.toml lists the packages: one forgotten there would be missing here.
    packages = {init.relative_to(ROOT).as_posix()
                for top in ("backend", "workers") for init in (ROOT / top).rglob("__init__.py")}
    assert packages <= names, sorted(packages - names)
    assert not [n for n in names if n.endswith(".pyc")]


@pytest.mark.slow
def test_curvecast_up_from_the_installed_wheel_alone_serves_the_dashboard(wheel, tmp_path):
    target = tmp_path / "site"
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q",
         "--target", str(target), str(wheel)], capture_output=True, text=True, timeout=120)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    # -S skips site-packages' .pth files, so the checkout's editable install (which maps
    # backend.dashboard and backend.migrations onto frontend/ and migrations/) cannot stand in
    # for a file the wheel lacks; the dependencies still come from this environment.
    deps = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    env = {k: v for k, v in os.environ.items() if not k.startswith("CURVECAST_")}
    env["PYTHONPATH"] = os.pathsep.join([str(target), *deps])
    python = [sys.executable, "-S"]
    where = subprocess.run(
        [*python, "-c", "import backend.app as a, backend.migrate as m; from importlib import "
         "resources; print(a.__file__, a.dashboard_dir(), "
         "resources.files(m.MIGRATIONS_PACKAGE), sep='\\n')"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert where.returncode == 0, where.stderr
    assert all(Path(line).is_relative_to(target) for line in where.stdout.split()), where.stdout

    port = free_port()
    log = tmp_path / "up.log"
    with open(log, "w") as out:
        server = subprocess.Popen([*python, "-m", "backend", "up", "--port", str(port)],
                                  cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_healthy(base, 60, server, log)
        assert (tmp_path / ".curvecast" / "curvecast.db").exists()  # it migrated itself
        for path, source in (("/", "index.html"), ("/js/main.js", "js/main.js"),
                             ("/css/app.css", "css/app.css")):
            page = httpx.get(base + path)
            assert page.status_code == 200, path
            assert page.content == (ROOT / "frontend" / source).read_bytes(), path
        plotly = httpx.get(f"{base}/vendor/plotly.min.js")
        assert plotly.status_code == 200 and len(plotly.content) > 1_000_000
        assert plotly.headers["content-type"].startswith("text/javascript")
    finally:
        server.terminate()
        server.wait(20)


def test_a_checkout_finds_the_dashboard_and_migrations_in_its_own_folders():
    """The editable install maps the packages onto the top-level folders: edits show at once."""
    from importlib import resources

    assert dashboard_dir() == ROOT / "frontend"
    assert Path(str(resources.files(migrate.MIGRATIONS_PACKAGE))) == ROOT / "migrations"


def test_an_install_without_the_dashboard_says_so_and_keeps_the_api(monkeypatch, tmp_path,
                                                                    caplog):
    monkeypatch.setattr(app_module, "DASHBOARD_PACKAGE", "backend.no_such_dashboard")
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'c.db'}", broker_url="")
    with caplog.at_level(logging.ERROR, logger="curvecast.app"):
        app = create_app(settings, InProcessDispatcher())
    assert "not installed" in caplog.text and "backend.no_such_dashboard" in caplog.text
    with TestClient(app) as client:
        page = client.get("/")
        assert page.status_code == 503
        assert "backend.no_such_dashboard" in page.text and "reinstall" in page.text
        assert client.get("/api/v1/health").json()["status"] == "ok"
