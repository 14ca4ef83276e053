"""Scaling-fit requests: create (the fit itself is a job), read, and guard what needs a result.

Services never commit: the route owns the transaction, and the job is enqueued after it.
"""

from datetime import timedelta

from sqlalchemy import exists, select, update
from sqlalchemy.orm import Session

from backend.errors import Conflict, NotFound, Unprocessable
from backend.jobs import FIT_SCALING, Dispatcher, enqueue_after_commit
from backend.models import Project, Run, ScalingFitRow, Series, utcnow
from backend.runs.service import Principal
from backend.scaling.schemas import RunSelector


def _require_metric(session: Session, project: Project, metric: str) -> None:
    """Refuse a metric no run of the project logs: almost always a typo, never a useful fit."""
    logged = session.scalar(select(exists().where(
        Series.key == metric, Series.run_id == Run.id, Run.project_id == project.id,
    )))
    if not logged:
        raise Unprocessable(
            f"no run of project {project.name!r} logs a metric {metric!r}", "metric"
        )


def request_fit(
    session: Session,
    dispatcher: Dispatcher,
    project: Project,
    *,
    metric: str,
    law: str,
    runs: RunSelector,
    include_unfinished: bool = False,
) -> ScalingFitRow:
    """Store a pending fit and enqueue its job once the caller commits."""
    _require_metric(session, project, metric)
    row = ScalingFitRow(
        project_id=project.id,
        metric=metric,
        law=law,
        selector=runs.model_dump() | {"include_unfinished": include_unfinished},
        status="pending",
    )
    session.add(row)
    session.flush()
    enqueue_after_commit(session, dispatcher, FIT_SCALING, row.id)
    return row


def requeue_lost_fits(session: Session, dispatcher: Dispatcher, requeue_after_s: float) -> int:
    """Re-send fits still pending long after their job was sent (lost with a worker or the
    broker); the sweep calls this."""
    now = utcnow()
    rows = session.scalars(
        update(ScalingFitRow)
        .where(ScalingFitRow.status == "pending",
               ScalingFitRow.requested_at < now - timedelta(seconds=requeue_after_s))
        .values(requested_at=now)
        .returning(ScalingFitRow.id)
        .execution_options(synchronize_session=False)
    ).all()
    for fit_id in rows:
        enqueue_after_commit(session, dispatcher, FIT_SCALING, fit_id)
    return len(rows)


def get_fit(session: Session, who: Principal, fit_id: int) -> ScalingFitRow:
    """The fit, or 404 when it does not exist or belongs to a project the caller cannot see."""
    row = session.get(ScalingFitRow, fit_id)
    if row is None or not who.can_see(row.project_id):
        raise NotFound(f"scaling fit {fit_id} not found", "fit_id")
    return row


def require_ready(row: ScalingFitRow) -> None:
    """409 unless the fit has a result to evaluate, saying what to do instead."""
    if row.status == "pending":
        raise Conflict(
            f"scaling fit {row.id} is still pending; poll GET /api/v1/scaling-fits/{row.id} "
            "until its status is 'ready'", "fit_id",
        )
    if row.status != "ready":
        raise Conflict(f"scaling fit {row.id} is {row.status}: {row.reason}", "fit_id")


def list_fits(session: Session, project: Project) -> list[ScalingFitRow]:
    stmt = (
        select(ScalingFitRow)
        .where(ScalingFitRow.project_id == project.id)
        .order_by(ScalingFitRow.created_at.desc(), ScalingFitRow.id.desc())
    )
    return list(session.scalars(stmt))


def project_name(session: Session, row: ScalingFitRow) -> str:
    return session.scalar(select(Project.name).where(Project.id == row.project_id))
