"""Stop policies, run events and alerts. Knows no maths: the worker computes probabilities
and hands this module the decision to record."""

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.orm import Session

from backend.errors import NotFound
from backend.forecasts.service import interval_sd
from backend.jobs import DELIVER_ALERT, Dispatcher, enqueue_after_commit
from backend.models import (
    Alert,
    AlertRule,
    Forecast,
    Project,
    Run,
    RunEvent,
    Series,
    StopPolicy,
    utcnow,
)

# Seconds before attempt n+1 of a delivery (attempt n failed); the last failure is final.
RETRY_DELAYS = (1.0, 4.0, 15.0, 60.0)
# What an attempt shows until its outcome is recorded: if that never happens (the worker died
# mid-attempt), the alert log still counts the attempt, and says why it has no outcome.
CUT_SHORT = "no outcome recorded: the attempt was cut short (its worker was lost)"


def put_policy(session: Session, project: Project, fields: dict[str, Any]) -> StopPolicy:
    """Create or replace the policy of the project (or of one group of it)."""
    group = fields.get("group")
    policy = session.scalar(select(StopPolicy).where(
        StopPolicy.project_id == project.id,
        StopPolicy.group.is_(None) if group is None else StopPolicy.group == group,
    ))
    if policy is None:
        policy = StopPolicy(project_id=project.id, group=group)
        session.add(policy)
    for name in ("metric", "mode", "reference", "threshold", "min_progress"):
        setattr(policy, name, fields[name])
    policy.updated_at = utcnow()
    session.flush()
    return policy


def list_policies(session: Session, project: Project) -> list[StopPolicy]:
    return list(session.scalars(select(StopPolicy).where(StopPolicy.project_id == project.id)))


def policy_for(session: Session, run: Run) -> StopPolicy | None:
    """The run's group policy if there is one, else the project's."""
    policies = {p.group: p for p in session.scalars(
        select(StopPolicy).where(StopPolicy.project_id == run.project_id,
                                 or_(StopPolicy.group.is_(None), StopPolicy.group == run.group))
    )}
    return policies.get(run.group) if run.group in policies else policies.get(None)


@dataclass(frozen=True)
class Reference:
    """The value to beat, where it comes from, and how well it is known (sd 0: exactly)."""

    value: float
    label: str
    sd: float = 0.0
    run_id: str | None = None  # the finished run it comes from (None: a target value)


def reference_for(session: Session, run: Run, policy: StopPolicy) -> Reference | None:
    """The value to beat; None while there is nothing to compare."""
    ref = policy.reference
    if ref["kind"] == "target":
        return Reference(float(ref["target"]), f"target {ref['target']}")
    k = 1 if ref["kind"] == "best_finished" else int(ref["k"])
    # A finished run's final value is its forecast at its last step (the fitted curve) when
    # there is one: a single noisy last point would move the bar. That value is an estimate,
    # so its interval comes along as an sd for the comparison. It is the curve's level (a run
    # that finished before its target step may have the batch noise of that step forecast in
    # final_mean), as a stop compares levels.
    stmt = (
        select(Run.id, Run.name, Series.last_value,
               func.coalesce(Forecast.trend_mean, Forecast.final_mean), Forecast.final_lower,
               Forecast.final_upper, Forecast.level)
        .join(Series, Series.run_id == Run.id)
        .outerjoin(Forecast, and_(Forecast.run_id == Run.id, Forecast.key == Series.key,
                                  Forecast.status == "ready"))
        .where(Run.project_id == run.project_id, Run.status == "finished",
               Series.key == policy.metric, Series.last_value.is_not(None))
    )
    if policy.group is not None or run.group is not None:
        stmt = stmt.where(Run.group == (policy.group or run.group))
    finals = sorted(
        ((last, 0.0, name, rid) if smooth is None else
         (smooth, interval_sd(lower, upper, level) or 0.0, name, rid)
         for rid, name, last, smooth, lower, upper, level in session.execute(stmt)
         if last == last),
        key=lambda f: f[0], reverse=policy.mode == "max")
    if len(finals) < k:
        return None
    value, sd, name, rid = finals[k - 1]
    label = "best" if k == 1 else f"{k}-th best"
    return Reference(float(value), f"{label} finished run {name!r} ({value:.4g})", sd, rid)


def record_decision(session: Session, dispatcher: Dispatcher, dashboard_url: str, run: Run,
                    stop: bool, reason: dict[str, Any]) -> None:
    """Store the run's stop decision and its reasons; alert when it starts to hold."""
    run.should_stop = stop
    run.stop_reason = reason
    set_event(session, dispatcher, dashboard_url, run, "should_stop", stop, reason)


def set_event(session: Session, dispatcher: Dispatcher, dashboard_url: str, run: Run,
              event: str, holds: bool, details: dict[str, Any]) -> None:
    """Enter or leave a run state; entering it alerts every rule that asks for it, once."""
    existing = session.scalar(
        select(RunEvent).where(RunEvent.run_id == run.id, RunEvent.event == event))
    if not holds:
        if existing is not None:
            session.delete(existing)
        return
    if existing is not None:
        existing.details = details
        return
    session.add(RunEvent(run_id=run.id, event=event, details=details))
    session.flush()
    rules = session.scalars(select(AlertRule).where(AlertRule.project_id == run.project_id))
    for rule in rules:
        if event not in rule.events:
            continue
        payload = {
            "event": event, "run_id": run.id, "run_name": run.name, "group": run.group,
            "status": run.status, "last_step": run.last_step, "total_steps": run.total_steps,
            "details": details, "dashboard_url": f"{dashboard_url}/#/run/{run.id}",
        }
        alert = Alert(project_id=run.project_id, rule_id=rule.id, run_id=run.id, event=event,
                      payload=payload, state="pending", attempts=0)
        session.add(alert)
        session.flush()
        enqueue_after_commit(session, dispatcher, DELIVER_ALERT, alert.id)


def create_rule(session: Session, project: Project, events: list[str], url: str,
                channel: str) -> AlertRule:
    rule = AlertRule(project_id=project.id, events=events, url=url, channel=channel)
    session.add(rule)
    session.flush()
    return rule


def list_rules(session: Session, project: Project) -> list[AlertRule]:
    return list(session.scalars(select(AlertRule).where(AlertRule.project_id == project.id)))


def delete_rule(session: Session, project: Project, rule_id: int) -> None:
    result = session.execute(delete(AlertRule).where(
        AlertRule.id == rule_id, AlertRule.project_id == project.id))
    if not result.rowcount:
        raise NotFound(f"alert rule {rule_id} not found", "rule_id")


def list_alerts(session: Session, project: Project, limit: int = 500) -> list[Alert]:
    stmt = (select(Alert).where(Alert.project_id == project.id)
            .order_by(Alert.fired_at.desc(), Alert.id.desc()).limit(limit))
    return list(session.scalars(stmt))


def claim_alert(session: Session, alert_id: int,
                lease_s: float) -> tuple[Alert, AlertRule] | None:
    """Take a pending, due alert for one delivery attempt, counted now: a lease of ``lease_s``
    keeps other workers off it, and is all that is left of the claim if this worker dies, so
    the sweep sends the alert again once it runs out."""
    now = utcnow()
    claimed = session.execute(
        update(Alert)
        .where(Alert.id == alert_id, Alert.state == "pending", Alert.attempts <= len(RETRY_DELAYS),
               or_(Alert.next_attempt_at.is_(None), Alert.next_attempt_at <= now))
        .values(next_attempt_at=now + timedelta(seconds=lease_s), attempts=Alert.attempts + 1,
                last_error=CUT_SHORT)
        .execution_options(synchronize_session=False)
    )
    if not claimed.rowcount:
        return None
    alert = session.get(Alert, alert_id)
    session.refresh(alert)
    return alert, session.get(AlertRule, alert.rule_id)


def record_attempt(alert: Alert, error: str | None) -> None:
    """The outcome of the attempt claim_alert counted: delivered, retried later with backoff,
    or failed for good."""
    if error is None:
        alert.state, alert.delivered_at, alert.next_attempt_at = "delivered", utcnow(), None
        alert.last_error = None
        return
    alert.last_error = error[:512]
    if alert.attempts > len(RETRY_DELAYS):
        alert.state, alert.next_attempt_at = "failed", None
    else:
        delay = RETRY_DELAYS[alert.attempts - 1]
        alert.next_attempt_at = utcnow() + timedelta(seconds=delay)


def resend_due_alerts(session: Session, dispatcher: Dispatcher) -> int:
    """Enqueue pending alerts whose retry time has come (the sweep calls this). One whose last
    attempt was cut short has none left: it fails, as if that attempt had."""
    due = and_(Alert.state == "pending", Alert.next_attempt_at <= utcnow())
    session.execute(update(Alert).where(due, Alert.attempts > len(RETRY_DELAYS))
                    .values(state="failed", next_attempt_at=None)
                    .execution_options(synchronize_session=False))
    ids = list(session.scalars(select(Alert.id).where(due)))
    for alert_id in ids:
        enqueue_after_commit(session, dispatcher, DELIVER_ALERT, alert_id)
    return len(ids)
