"""HTTP routes for writing and reading metric series."""

import time

from fastapi import APIRouter, Query, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from backend.deps import PrincipalDep, SessionDep
from backend.errors import NotFound, PayloadTooLarge
from backend.forecasts.service import request_forecasts
from backend.jobs import Dispatcher
from backend.metrics import reads
from backend.metrics.ingest import write_batch
from backend.metrics.schemas import IngestOut, MetricBatch, SeriesOut
from backend.metrics.validate import parse_batch
from backend.runs import service as runs
from backend.runs.service import Principal
from backend.settings import Settings

router = APIRouter(prefix="/api/v1", tags=["metrics"])


def _ingest(session: Session, settings: Settings, dispatcher: Dispatcher, who: Principal,
            run_id: str, raw: bytes) -> IngestOut:
    batch = parse_batch(raw, settings.max_rows_per_batch, settings.max_key_length)
    run = runs.get_run(session, who, run_id)
    result = write_batch(session, run.id, batch, time.time())
    runs.touch(session, run, batch.max_step)
    if result.accepted:
        request_forecasts(session, dispatcher, settings, run, result.series_ids)
    session.commit()
    return IngestOut(
        accepted=result.accepted, duplicates=result.duplicates, should_stop=run.should_stop
    )


@router.post(
    "/runs/{run_id}/metrics",
    response_model=IngestOut,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": MetricBatch.model_json_schema()}},
        }
    },
)
async def post_metrics(run_id: str, request: Request, session: SessionDep,
                       who: PrincipalDep) -> IngestOut:
    """Store a batch of up to 10,000 rows; (run, key, step) already stored are skipped.

    The request's session (the one that checked the key) also writes the batch: one
    connection per request. Sessions are used by one thread at a time, so handing it to the
    thread pool is safe."""
    settings: Settings = request.app.state.settings
    declared = int(request.headers.get("content-length") or 0)
    if declared > settings.max_body_bytes:
        raise PayloadTooLarge(f"body over {settings.max_body_bytes} bytes", "body")
    raw = await request.body()
    if len(raw) > settings.max_body_bytes:
        raise PayloadTooLarge(f"body over {settings.max_body_bytes} bytes", "body")
    return await run_in_threadpool(
        _ingest, session, settings, request.app.state.dispatcher, who, run_id, raw
    )


@router.get("/runs/{run_id}/metrics", response_model=list[str])
def list_keys(run_id: str, session: SessionDep, who: PrincipalDep) -> list[str]:
    run = runs.get_run(session, who, run_id)
    return sorted(runs.summaries(session, [run.id])[run.id])


@router.get("/runs/{run_id}/metrics/{key:path}", response_model=SeriesOut)
def get_series(
    run_id: str,
    key: str,
    session: SessionDep,
    who: PrincipalDep,
    max_points: int = Query(2000, ge=10, le=100_000),
) -> SeriesOut:
    """The series downsampled server-side: every bucket keeps its min and max (spikes stay)."""
    run = runs.get_run(session, who, run_id)
    series = reads.find_series(session, run.id, key)
    if series is None:
        raise NotFound(f"run {run_id!r} has no metric {key!r}", "key")
    steps, values = reads.downsampled(session, series, max_points)
    return SeriesOut(key=key, count=series.count, step=steps.tolist(), value=values.tolist(),
                     time=reads.wall_times(session, series.id, steps))

