"""HTTP routes for projects, runs and heartbeats."""

from fastapi import APIRouter, Query, Response
from pydantic import ValidationError

from backend.deps import SESSION_COOKIE, PrincipalDep, SessionDep, SettingsDep
from backend.errors import Unauthorized, Unprocessable
from backend.models import Run
from backend.runs import service
from backend.runs.schemas import (
    HeartbeatOut,
    ProjectList,
    ProjectOut,
    RunCreate,
    RunList,
    RunOut,
    RunUpdate,
    SignIn,
    validate_schedule,
)

router = APIRouter(prefix="/api/v1", tags=["runs"])


def run_out(run: Run, project_name: str, summary: dict | None = None) -> RunOut:
    data = {f: getattr(run, f) for f in RunOut.model_fields if f not in ("project", "summary")}
    return RunOut(project=project_name, summary=summary or {}, **data)


@router.post("/session", response_model=ProjectList)
def sign_in(body: SignIn, response: Response, session: SessionDep, settings: SettingsDep):
    """Dashboard sign-in: checks the key and keeps it in an HttpOnly cookie (never in a URL)."""
    who = service.principal_for_key(session, body.key, settings.admin_key)
    if who is None:
        raise Unauthorized("unknown API key", "key")
    response.set_cookie(SESSION_COOKIE, body.key, httponly=True, samesite="strict",
                        path="/api", max_age=30 * 24 * 3600)
    return list_projects(session, who)


@router.delete("/session", status_code=204)
def sign_out(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/api")


@router.get("/projects", response_model=ProjectList)
def list_projects(session: SessionDep, who: PrincipalDep) -> ProjectList:
    rows = service.list_projects(session, who)
    return ProjectList(
        projects=[ProjectOut(name=p.name, created_at=p.created_at, n_runs=n) for p, n in rows]
    )


@router.post("/runs", status_code=201, response_model=RunOut, responses={
    200: {"model": RunOut, "description": "a run with this id already exists: that run"}})
def create_run(body: RunCreate, response: Response, session: SessionDep, who: PrincipalDep):
    fields = body.model_dump(exclude_unset=True)
    if body.lr_schedule is not None:
        try:
            fields["lr_schedule"] = validate_schedule(body.lr_schedule, body.total_steps)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = (err.get("ctx") or {}).get("field") or ".".join(str(p) for p in err["loc"])
            field = f"lr_schedule.{where}" if where else "lr_schedule"
            raise Unprocessable(err["msg"], field) from None
        except ValueError as exc:  # the forecaster could not use it (validate_schedule)
            where, _, why = str(exc).partition(": ")
            raise Unprocessable(why or str(exc), f"lr_schedule.{where}") from None
    run, created = service.create_run(session, who, fields)
    session.commit()
    if not created:
        response.status_code = 200
    return run_out(run, body.project)


@router.get("/runs", response_model=RunList)
def list_runs(
    session: SessionDep,
    who: PrincipalDep,
    project: str = Query(description="project name"),
) -> RunList:
    proj = service.visible_project(session, who, project)
    runs = service.list_runs(session, proj)
    sums = service.summaries(session, [r.id for r in runs])
    return RunList(runs=[run_out(r, proj.name, sums[r.id]) for r in runs])


@router.get("/runs/{run_id}", response_model=RunOut)
def get_run(run_id: str, session: SessionDep, who: PrincipalDep) -> RunOut:
    run = service.get_run(session, who, run_id)
    summary = service.summaries(session, [run.id])[run.id]
    return run_out(run, service.project_name(session, run), summary)


@router.patch("/runs/{run_id}", response_model=RunOut)
def update_run(run_id: str, body: RunUpdate, session: SessionDep, who: PrincipalDep) -> RunOut:
    run = service.get_run(session, who, run_id)
    service.set_status(run, body.status)
    session.commit()
    return run_out(run, service.project_name(session, run))


@router.post("/runs/{run_id}/heartbeat", response_model=HeartbeatOut)
def heartbeat(run_id: str, session: SessionDep, who: PrincipalDep) -> HeartbeatOut:
    run = service.get_run(session, who, run_id)
    service.touch(session, run)
    session.commit()
    return HeartbeatOut(should_stop=run.should_stop)
