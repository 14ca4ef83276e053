"""The `curvecast` command: up, worker, keys create, migrate, sync.

This is the composition root: the one place that wires the API to the worker code (the
in-process job runner of the embedded mode, or Celery).
"""

import gc
import os
import threading
from typing import Annotated

import typer
from rich.console import Console

from backend.settings import Settings

app = typer.Typer(help="Curvecast: an experiment tracker that forecasts.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
console = Console(stderr=True)
# How long an idle connection stays open. uvicorn's default, 5 s, equals httpx's pool expiry
# (the curvecast client's): a request on a pooled connection about 5 s after the last one (a
# training loop logging every few seconds) could meet the server's close and fail with "Server
# disconnected without sending a response". At 75 s the client's pool lets go first.
KEEP_ALIVE_S = 75

DbOption = Annotated[
    str | None,
    typer.Option("--db", help="database URL (default: CURVECAST_DATABASE_URL, else SQLite)"),
]


def _settings(db: str | None) -> Settings:
    return Settings(database_url=db) if db else Settings()


@app.command()
def migrate(db: DbOption = None) -> None:
    """Bring the database schema to the latest migration."""
    from backend import migrate as migrations

    settings = _settings(db)
    migrations.upgrade(settings.database_url)
    console.print(f"schema at {migrations.head_revision()} on {settings.database_url}")


@keys_app.command("create")
def keys_create(
    project: Annotated[str, typer.Option(help="project the key may read and write")],
    db: DbOption = None,
) -> None:
    """Print a new API key for PROJECT (created if new). The key is shown only once."""
    from backend.db import session_scope
    from backend.runs.service import create_key

    settings = _settings(db)
    _prepare_schema(settings)
    with session_scope(settings.database_url) as session:
        key = create_key(session, project)
    typer.echo(key)


@app.command()
def up(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8000,
    db: DbOption = None,
    workers: Annotated[int, typer.Option(min=1, help="API processes (Postgres only)")] = 1,
    demo: Annotated[bool, typer.Option(help="simulate a few training runs logging live")] = False,
) -> None:
    """Serve the API and dashboard; without a broker, jobs run in the API process."""
    import uvicorn

    settings = _settings(db)
    _prepare_schema(settings)
    if workers > 1 and settings.is_sqlite:
        console.print("[red]SQLite has a single writer: use --workers 1, or Postgres.")
        raise typer.Exit(2)
    os.environ["CURVECAST_DATABASE_URL"] = settings.database_url  # for the worker processes
    url = f"http://{host}:{port}"
    console.print(
        f"Curvecast on {url}  (database: {settings.database_url.split('@')[-1]}, "
        f"jobs: {'in-process' if settings.is_embedded else settings.broker_url}, "
        f"{workers} API process{'es' if workers > 1 else ''})"
    )
    if demo:
        from backend.demo import start_demo

        start_demo(url, settings, console)
    uvicorn.run("backend.cli:serve_app", factory=True, host=host, port=port, workers=workers,
                log_level="warning", timeout_keep_alive=KEEP_ALIVE_S)


def serve_app():
    """The app of one API process, from the environment (uvicorn calls this in each one)."""
    from backend.app import create_app
    from backend.jobs import SWEEP, CeleryDispatcher, InProcessDispatcher
    from workers import offload
    from workers.tasks import handlers

    settings = Settings()
    if settings.is_embedded:
        offload.in_child_process()  # the jobs run on a thread here; their fits must not
        dispatcher = InProcessDispatcher()
        dispatcher.start(handlers(settings, dispatcher))
        _every(settings.sweep_every_s, lambda: dispatcher.send(SWEEP))
    else:
        dispatcher = CeleryDispatcher(settings.broker_url)
    app = create_app(settings, dispatcher)
    # Everything built so far lives as long as the process: keep it out of the cyclic GC's
    # scans. Parsing a 10,000-row batch allocates ~30,000 objects, and each collection they
    # trigger otherwise walks the whole heap (measured: 20 ms -> 6 ms per batch).
    gc.freeze()
    return app


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option(help="worker processes")] = 1,
    beat: Annotated[bool, typer.Option(help="also run the periodic sweep")] = True,
) -> None:
    """Run a Celery worker for CURVECAST_BROKER_URL and CURVECAST_DATABASE_URL."""
    from backend.migrate import require_head
    from workers.celery_app import make_celery

    settings = Settings()
    if settings.is_embedded:
        console.print("[red]CURVECAST_BROKER_URL is not set: `curvecast up` runs jobs itself.")
        raise typer.Exit(2)
    require_head(settings.database_url)
    argv = ["worker", "--loglevel=INFO", f"--concurrency={concurrency}", "--pool=prefork"]
    if beat:
        argv.append("--beat")
    make_celery(settings).worker_main(argv)


@app.command()
def beat() -> None:
    """Run only the periodic sweep scheduler (when workers run with --no-beat)."""
    from workers.celery_app import make_celery

    settings = Settings()
    if settings.is_embedded:
        console.print("[red]CURVECAST_BROKER_URL is not set: `curvecast up` sweeps by itself.")
        raise typer.Exit(2)
    make_celery(settings).start(["beat", "--loglevel=INFO"])


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def sync(ctx: typer.Context) -> None:
    """Send runs spooled by the client while the server was unreachable."""
    from curvecast.sync import main as sync_main

    raise typer.Exit(sync_main(list(ctx.args)))


def _prepare_schema(settings: Settings) -> None:
    """Embedded SQLite migrates itself; a shared database must already be at the head."""
    from backend import migrate as migrations

    if settings.is_sqlite:
        migrations.upgrade(settings.database_url)
        return
    try:
        migrations.require_head(settings.database_url)
    except migrations.SchemaNotCurrent as exc:
        console.print(f"[red]{exc}")
        raise typer.Exit(2) from None


def _every(seconds: float, fn) -> None:
    def loop() -> None:
        stop = threading.Event()
        while not stop.wait(seconds):
            fn()

    threading.Thread(target=loop, name="curvecast-sweep", daemon=True).start()


def main() -> None:
    app()
