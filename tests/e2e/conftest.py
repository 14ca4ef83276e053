"""The dashboard against a real `curvecast up` process on the test Postgres, in a real
headless Chromium. Runs are seeded through the public HTTP API, as a training script would."""

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.conftest import free_port
from tests.e2e.seed import seed_project, wait_for_forecasts
from tests.waiting import wait_healthy

KEY = f"e2e-{uuid.uuid4().hex}"
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(__file__).parent / "screenshots"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]



@pytest.fixture(scope="session")
def server(pg_url: str, tmp_path_factory) -> Iterator[str]:
    """`curvecast up` on a free port, jobs in-process; yields its base URL."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("server") / "curvecast.log"
    # Webhooks to loopback are allowed so that the alerts test can run a real receiver.
    env = {**os.environ, "CURVECAST_ADMIN_KEY": KEY, "CURVECAST_WEBHOOK_ALLOW_PRIVATE": "true"}
    env.pop("CURVECAST_BROKER_URL", None)
    cli = Path(sys.executable).parent / "curvecast"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [str(cli), "up", "--host", "127.0.0.1", "--port", str(port), "--db", pg_url],
            env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, 30, proc, log_path)
    except AssertionError as exc:
        proc.kill()
        pytest.fail(str(exc))
    yield url
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="session")
def api(server: str) -> Iterator[httpx.Client]:
    """The public API with the admin key, as a training script would call it."""
    with httpx.Client(base_url=server, headers={"Authorization": f"Bearer {KEY}"},
                      timeout=30) as client:
        yield client


@pytest.fixture(scope="session")
def seeded(api: httpx.Client) -> dict:
    """A project with three finished runs and a running one, their loss forecasts ready.
    (The database is fresh per test session, so the name can be a readable constant.)"""
    project = "lm-sweep"
    runs = seed_project(api, project)
    wait_for_forecasts(api, [r["id"] for r in runs.values()])
    return {"project": project, "runs": runs}


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Browser, server: str) -> Iterator[Page]:
    """A fresh browser profile on the dashboard; fails the test on any script error."""
    context = browser.new_context(base_url=server, viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    yield pg
    context.close()
    assert not errors, f"script errors on the page: {errors}"


@pytest.fixture
def signed_in(page: Page) -> Page:
    """The page with a session cookie, set through the sign-in endpoint like the form does."""
    response = page.request.post("/api/v1/session", data={"key": KEY})
    assert response.ok, response.text()
    return page


def update_docs() -> bool:
    """`CURVECAST_UPDATE_DOCS=1` also refreshes the README's screenshot in docs/."""
    return os.environ.get("CURVECAST_UPDATE_DOCS") == "1"


def screenshot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
