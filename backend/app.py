"""create_app(settings, dispatcher): routers, the static dashboard, error handlers."""

import logging
import time
from importlib import resources
from importlib.metadata import version
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import text

from backend.alerts.routes import router as alerts_router
from backend.db import get_engine
from backend.errors import ERROR_RESPONSES, install_error_handlers
from backend.forecasts.routes import router as forecasts_router
from backend.jobs import Dispatcher
from backend.metrics.routes import router as metrics_router
from backend.runs.routes import router as runs_router
from backend.scaling.routes import router as scaling_router
from backend.settings import Settings

# The top-level frontend/ folder, installed as this package (see pyproject.toml's package-dir).
DASHBOARD_PACKAGE = "backend.dashboard"

log = logging.getLogger("curvecast.app")


def dashboard_dir() -> Path | None:
    """The dashboard's folder (frontend/ in a checkout, backend/dashboard/ in a wheel), or None
    when this install lacks it."""
    try:
        folder = resources.files(DASHBOARD_PACKAGE)
    except ModuleNotFoundError:
        return None
    index = folder / "index.html"
    return Path(str(index)).parent if index.is_file() else None


def create_app(settings: Settings, dispatcher: Dispatcher) -> FastAPI:
    app = FastAPI(
        title="Curvecast",
        version=version("curvecast"),
        description="Experiment tracking that forecasts: see API.md for the v1 contract.",
    )
    app.state.settings = settings
    app.state.dispatcher = dispatcher
    install_error_handlers(app)

    @app.middleware("http")
    async def server_timing(request: Request, call_next):
        """Time spent in the server, in the standard Server-Timing header (benchmarks read it)."""
        start = time.perf_counter()
        response = await call_next(request)
        response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - start) * 1e3:.2f}"
        return response

    @app.get("/api/v1/health", tags=["health"])
    def health() -> dict:
        with get_engine(settings.database_url).connect() as conn:
            conn.execute(text("SELECT 1"))
        return {
            "status": "ok",
            "version": app.version,
            "database": get_engine(settings.database_url).dialect.name,
            "jobs": "in-process" if settings.is_embedded else "celery",
        }

    for router in (runs_router, metrics_router, forecasts_router, alerts_router,
                   scaling_router):
        app.include_router(router, responses=ERROR_RESPONSES)

    plotly_js = resources.files("plotly") / "package_data" / "plotly.min.js"

    @app.get("/vendor/plotly.min.js", include_in_schema=False)
    def plotly() -> FileResponse:
        return FileResponse(str(plotly_js), media_type="text/javascript")

    dashboard = dashboard_dir()
    if dashboard is not None:
        app.mount("/", StaticFiles(directory=dashboard, html=True), name="dashboard")
        return app
    # A broken install: the API still serves (training jobs keep logging), and both the log
    # and the page say what is wrong instead of a bare 404.
    missing = (f"the dashboard's files (package {DASHBOARD_PACKAGE}, index.html) are not "
               "installed: reinstall Curvecast (`pip install .`, or `pip install -e .` in a "
               "checkout); the API under /api/v1 works without them")
    log.error(missing)

    @app.get("/", include_in_schema=False)
    def no_dashboard() -> HTMLResponse:
        return HTMLResponse(f"<!doctype html><title>Curvecast</title><p>{missing}",
                            status_code=503)

    return app
