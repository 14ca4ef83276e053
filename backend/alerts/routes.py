"""HTTP routes for stop policies, alert rules and the alert log."""

from fastapi import APIRouter

from backend.alerts import service
from backend.alerts.schemas import (
    AlertList,
    AlertOut,
    AlertRuleIn,
    AlertRuleList,
    AlertRuleOut,
    StopPolicyIn,
    StopPolicyList,
    StopPolicyOut,
)
from backend.alerts.urls import UnsafeUrl, check_webhook_url
from backend.deps import PrincipalDep, ProjectPath, RowId, SessionDep, SettingsDep
from backend.errors import Unprocessable
from backend.models import Alert, AlertRule, StopPolicy
from backend.runs.service import project_for_write, visible_project

router = APIRouter(prefix="/api/v1", tags=["stopping and alerts"])


def _policy_out(p: StopPolicy) -> StopPolicyOut:
    return StopPolicyOut(metric=p.metric, mode=p.mode, reference=p.reference,
                         threshold=p.threshold, min_progress=p.min_progress, group=p.group,
                         updated_at=p.updated_at)


def _rule_out(r: AlertRule) -> AlertRuleOut:
    return AlertRuleOut(id=r.id, events=r.events, webhook_url=r.url, channel=r.channel,
                        created_at=r.created_at)


def _alert_out(a: Alert) -> AlertOut:
    return AlertOut(id=a.id, event=a.event, run_id=a.run_id, rule_id=a.rule_id,
                    fired_at=a.fired_at, delivered=a.state == "delivered", state=a.state,
                    attempts=a.attempts, last_error=a.last_error, payload=a.payload)


@router.put("/projects/{project}/stop-policy", response_model=StopPolicyOut)
def put_stop_policy(project: ProjectPath, body: StopPolicyIn, session: SessionDep,
                    who: PrincipalDep) -> StopPolicyOut:
    """Set when runs of the project (or of `group`) are told to stop."""
    proj = project_for_write(session, who, project)
    fields = body.model_dump(exclude={"reference"}) | {"reference": body.reference_json()}
    policy = service.put_policy(session, proj, fields)
    session.commit()
    return _policy_out(policy)


@router.get("/projects/{project}/stop-policy", response_model=StopPolicyList)
def get_stop_policies(project: ProjectPath, session: SessionDep,
                      who: PrincipalDep) -> StopPolicyList:
    proj = visible_project(session, who, project)
    return StopPolicyList(policies=[_policy_out(p) for p in service.list_policies(session, proj)])


@router.post("/projects/{project}/alert-rules", status_code=201, response_model=AlertRuleOut)
def create_alert_rule(project: ProjectPath, body: AlertRuleIn, session: SessionDep,
                      who: PrincipalDep, settings: SettingsDep) -> AlertRuleOut:
    """Send the listed events to a JSON webhook or a Slack incoming webhook."""
    proj = project_for_write(session, who, project)
    try:
        check_webhook_url(body.webhook_url, settings.webhook_allow_private)
    except UnsafeUrl as exc:
        raise Unprocessable(str(exc), "webhook_url") from None
    rule = service.create_rule(session, proj, body.events, body.webhook_url, body.channel)
    session.commit()
    return _rule_out(rule)


@router.get("/projects/{project}/alert-rules", response_model=AlertRuleList)
def list_alert_rules(project: ProjectPath, session: SessionDep, who: PrincipalDep) -> AlertRuleList:
    proj = visible_project(session, who, project)
    return AlertRuleList(rules=[_rule_out(r) for r in service.list_rules(session, proj)])


@router.delete("/projects/{project}/alert-rules/{rule_id}", status_code=204)
def delete_alert_rule(project: ProjectPath, rule_id: RowId, session: SessionDep,
                      who: PrincipalDep) -> None:
    service.delete_rule(session, visible_project(session, who, project), rule_id)
    session.commit()


@router.get("/projects/{project}/alerts", response_model=AlertList)
def list_alerts(project: ProjectPath, session: SessionDep, who: PrincipalDep) -> AlertList:
    """Every alert fired in the project, newest first, with its delivery record."""
    proj = visible_project(session, who, project)
    return AlertList(alerts=[_alert_out(a) for a in service.list_alerts(session, proj)])
