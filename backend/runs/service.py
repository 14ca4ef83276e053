"""Projects, API keys, runs and heartbeats. Services never commit: the caller owns the unit."""

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from backend.errors import NotFound
from backend.models import ApiKey, Project, Run, RunEvent, Series, utcnow

TERMINAL = ("finished", "failed", "killed")


@dataclass(frozen=True)
class Principal:
    """Who is calling: the admin key (every project) or a key scoped to one project."""

    project_id: int | None  # None = admin

    def can_see(self, project_id: int) -> bool:
        return self.project_id is None or self.project_id == project_id


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(session: Session, project_name: str) -> str:
    """Make a new key for the project (created if new); return the plain key, shown once."""
    project = get_or_create_project(session, project_name)
    key = "cc_" + secrets.token_hex(16)
    session.add(ApiKey(project_id=project.id, key_hash=hash_key(key), prefix=key[:7]))
    session.flush()
    return key


def principal_for_key(session: Session, key: str, admin_key: str) -> Principal | None:
    if admin_key and secrets.compare_digest(key.encode(), admin_key.encode()):  # any text
        return Principal(project_id=None)
    row = session.scalar(select(ApiKey.project_id).where(ApiKey.key_hash == hash_key(key)))
    return None if row is None else Principal(project_id=row)


def get_or_create_project(session: Session, name: str) -> Project:
    project = session.scalar(select(Project).where(Project.name == name))
    if project is not None:
        return project
    try:
        with session.begin_nested():
            project = Project(name=name)
            session.add(project)
    except IntegrityError:  # created concurrently by another request
        project = session.scalar(select(Project).where(Project.name == name))
    return project


def visible_project(session: Session, who: Principal, name: str) -> Project:
    """The project by name, or 404 when it does not exist or the caller may not see it."""
    project = session.scalar(select(Project).where(Project.name == name))
    if project is None or not who.can_see(project.id):
        raise NotFound(f"project {name!r} not found", "project")
    return project


def project_for_write(session: Session, who: Principal, name: str) -> Project:
    """The project to write into: the admin key creates it on first use, a scoped key may
    only write into its own."""
    if who.project_id is None:
        return get_or_create_project(session, name)
    return visible_project(session, who, name)


def list_projects(session: Session, who: Principal) -> list[tuple[Project, int]]:
    stmt = (
        select(Project, func.count(Run.id))
        .outerjoin(Run, Run.project_id == Project.id)
        .group_by(Project.id)
        .order_by(Project.name)
    )
    if who.project_id is not None:
        stmt = stmt.where(Project.id == who.project_id)
    return [(p, n) for p, n in session.execute(stmt)]


def create_run(session: Session, who: Principal, fields: dict) -> tuple[Run, bool]:
    """Create a run, or return the existing one when the client re-sends its id.

    Returns (run, created). The project is created on first use by the admin key; a scoped
    key may only create runs in its own project.
    """
    project_name = fields.pop("project")
    project = project_for_write(session, who, project_name)
    run_id = fields.pop("id", None) or uuid.uuid4().hex
    existing = session.get(Run, run_id)
    if existing is not None:
        if existing.project_id != project.id:
            raise NotFound(f"run {run_id!r} not found in project {project_name!r}", "id")
        return existing, False
    fields["name"] = fields.get("name") or run_id[:8]
    run = Run(id=run_id, project_id=project.id, status="running", should_stop=False, **fields)
    try:
        with session.begin_nested():
            session.add(run)
    except IntegrityError:  # the same id raced in from a retried request
        return session.get(Run, run_id), False
    return run, True


def get_run(session: Session, who: Principal, run_id: str) -> Run:
    run = session.get(Run, run_id)
    if run is None or not who.can_see(run.project_id):
        raise NotFound(f"run {run_id!r} not found", "run_id")
    return run


def list_runs(session: Session, project: Project) -> list[Run]:
    stmt = select(Run).where(Run.project_id == project.id).order_by(Run.created_at.desc())
    return list(session.scalars(stmt))


def summaries(session: Session, run_ids: list[str]) -> dict[str, dict[str, dict]]:
    """Per run and metric: the stored summary row (never the raw points)."""
    out: dict[str, dict[str, dict]] = {rid: {} for rid in run_ids}
    if not run_ids:
        return out
    for s in session.scalars(select(Series).where(Series.run_id.in_(run_ids))):
        out[s.run_id][s.key] = {
            "count": s.count,
            "first_step": s.first_step,
            "first_value": s.first_value,
            "last_step": s.last_step,
            "last_value": s.last_value,
            "min": s.min_value,
            "max": s.max_value,
            "nonfinite": s.nonfinite_count,
        }
    return out


def set_status(run: Run, status: str) -> None:
    run.status = status
    run.last_seen = utcnow()


def touch(session: Session, run: Run, last_step: int | None = None) -> None:
    """Record that the run is alive; a run marked crashed comes back to life (no longer
    stalled)."""
    run.last_seen = utcnow()
    if last_step is not None and (run.last_step is None or last_step > run.last_step):
        run.last_step = last_step
    if run.status == "crashed":
        run.status = "running"
        session.execute(delete(RunEvent).where(RunEvent.run_id == run.id,
                                               RunEvent.event == "stalled"))


def mark_stale_runs_crashed(
    session: Session, stale_after_s: float, now: datetime | None = None
) -> list[Run]:
    """Runs still `running` but silent for `stale_after_s` become `crashed`; returns them."""
    cutoff = (now or utcnow()) - timedelta(seconds=stale_after_s)
    ids = session.scalars(
        update(Run)
        .where(Run.status == "running", Run.last_seen < cutoff)
        .values(status="crashed")
        .returning(Run.id)
        .execution_options(synchronize_session=False)
    ).all()
    return [session.get(Run, run_id) for run_id in ids]


def project_name(session: Session, run: Run) -> str:
    return session.scalar(select(Project.name).where(Project.id == run.project_id))
