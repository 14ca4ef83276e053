"""HTTP routes for scaling-law and hyperparameter-law fits, their predictions and frontier."""

from typing import Annotated

from fastapi import APIRouter, Query

from backend.deps import BigRowId, DispatcherDep, PrincipalDep, ProjectPath, SessionDep
from backend.errors import Conflict
from backend.models import ScalingFitRow
from backend.runs.service import visible_project
from backend.scaling import science, service
from backend.scaling.schemas import (
    HPARAM_PREFIX,
    FitCreated,
    Flops,
    FrontierOut,
    HparamLawIn,
    PredictIn,
    PredictOut,
    RunSelector,
    ScalingFitIn,
    ScalingFitList,
    ScalingFitOut,
    ScalingFitSummary,
)

router = APIRouter(prefix="/api/v1", tags=["scaling laws"])


def _summary_fields(row: ScalingFitRow, project: str) -> dict:
    selector = dict(row.selector)
    return {
        "id": row.id, "project": project, "status": row.status, "reason": row.reason,
        "law": row.law, "metric": row.metric, "n_runs": row.n_runs,
        "include_unfinished": bool(selector.pop("include_unfinished", False)),
        "runs": RunSelector(**selector), "created_at": row.created_at,
        "fitted_at": row.fitted_at,
    }


def fit_out(row: ScalingFitRow, project: str) -> ScalingFitOut:
    result = row.result or {}
    return ScalingFitOut(
        **_summary_fields(row, project),
        params=result.get("params", {}),
        intervals=result.get("intervals", {}),
        level=result.get("level"),
        inputs=row.inputs,
    )


@router.post("/projects/{project}/scaling-fits", status_code=201, response_model=FitCreated)
def create_scaling_fit(project: ProjectPath, body: ScalingFitIn, session: SessionDep,
                       who: PrincipalDep, dispatcher: DispatcherDep) -> FitCreated:
    """Fit a scaling law to the selected runs' final values; poll the fit until it is ready."""
    proj = visible_project(session, who, project)
    row = service.request_fit(session, dispatcher, proj, metric=body.metric, law=body.law,
                              runs=body.runs, include_unfinished=body.include_unfinished)
    session.commit()
    return FitCreated(id=row.id, status=row.status)


@router.post("/projects/{project}/hparam-laws", status_code=201, response_model=FitCreated)
def create_hparam_law(project: ProjectPath, body: HparamLawIn, session: SessionDep,
                      who: PrincipalDep, dispatcher: DispatcherDep) -> FitCreated:
    """Fit the optimal value of a config key (lr, batch_size) as a power law in N and D.

    Finished runs are grouped into sweeps by (params, tokens); each sweep's optimum comes from
    a curve through its losses. Read and predict it at /scaling-fits/{id}.
    """
    proj = visible_project(session, who, project)
    row = service.request_fit(session, dispatcher, proj, metric=body.metric,
                              law=HPARAM_PREFIX + body.hparam, runs=body.runs)
    session.commit()
    return FitCreated(id=row.id, status=row.status)


@router.get("/projects/{project}/scaling-fits", response_model=ScalingFitList)
def list_scaling_fits(project: ProjectPath, session: SessionDep,
                      who: PrincipalDep) -> ScalingFitList:
    """The project's fits, newest first, without their inputs."""
    proj = visible_project(session, who, project)
    rows = service.list_fits(session, proj)
    return ScalingFitList(fits=[ScalingFitSummary(**_summary_fields(r, proj.name)) for r in rows])


@router.get("/scaling-fits/{fit_id}", response_model=ScalingFitOut)
def get_scaling_fit(fit_id: BigRowId, session: SessionDep, who: PrincipalDep) -> ScalingFitOut:
    row = service.get_fit(session, who, fit_id)
    return fit_out(row, service.project_name(session, row))


@router.post("/scaling-fits/{fit_id}/predict", response_model=PredictOut)
def predict(fit_id: BigRowId, body: PredictIn, session: SessionDep,
            who: PrincipalDep) -> PredictOut:
    """The fitted law at a planned (N, D), with its prediction interval; 409 until ready."""
    row = service.get_fit(session, who, fit_id)
    service.require_ready(row)
    return science.predict(row, body)


@router.get("/scaling-fits/{fit_id}/frontier", response_model=FrontierOut)
def get_frontier(
    fit_id: BigRowId,
    session: SessionDep,
    who: PrincipalDep,
    compute: Annotated[list[Flops], Query(min_length=1, max_length=200,
                                            description="FLOP budgets, e.g. compute=1e21")],
) -> FrontierOut:
    """The compute-optimal frontier: for each budget C = 6ND, the loss-minimising N, D."""
    row = service.get_fit(session, who, fit_id)
    if science.is_hparam(row.law):
        raise Conflict(f"scaling fit {fit_id} is a hyperparameter law; a frontier needs a "
                       "loss law", "fit_id")
    service.require_ready(row)
    return FrontierOut(points=science.compute_frontier(row, compute))
