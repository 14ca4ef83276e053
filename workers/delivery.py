"""Alert delivery to a JSON webhook or a Slack incoming webhook, one attempt per job.

An attempt is counted when it starts; a failed one is recorded with its error and retried by
the sweep after a backoff, and one cut short by a dead worker is sent again once its claim's
lease runs out. After the last retry the alert is `failed`. Every attempt is visible in the
alert log.
"""

import logging

import httpx

from backend.alerts.service import claim_alert, record_attempt
from backend.alerts.urls import UnsafeUrl, check_webhook_url
from backend.db import session_scope
from backend.models import Alert, AlertRule
from backend.settings import Settings

log = logging.getLogger("curvecast.delivery")
TIMEOUT_S = 5.0


def slack_text(alert: Alert) -> str:
    """One readable line for a person: what happened to which run, the forecast, a link."""
    p = alert.payload
    what = {
        "should_stop": "should stop early",
        "diverged": "diverged",
        "stalled": "stalled (no heartbeat or metrics)",
        "missed_target": "is predicted to miss its target",
    }.get(alert.event, alert.event)
    details = p.get("details") or {}
    forecast = details.get("forecast")
    extra = ""
    if forecast:
        extra = (f" Forecast {details.get('metric', '')} at step {forecast.get('target_step')}:"
                 f" {forecast['mean']:.4g} ({_band(forecast)})")
        extra += _judged_on(details.get("decided_on") or {}, forecast)
        if details.get("p_underperform") is not None:
            extra += (f", P(worse than {details.get('reference_label', 'reference')})"
                      f" = {details['p_underperform']:.2f}.")
    elif details.get("reason"):
        extra = f" {details['reason']}."
    return f"Run <{p['dashboard_url']}|{p['run_name']}> {what}.{extra}"


def _judged_on(on: dict, forecast: dict) -> str:
    """What the decision compared, where it differs from the forecast shown (else ""), by the
    dashboard's rule (frontend/js/format.js, judgedOn): the two ways pooled where their band
    differs, else the curve's level where its mean does (a sweep's shared batch noise moves
    the logged value)."""
    if on.get("lower") is None or on.get("upper") is None:
        return ""
    if on.get("of") != "level" and _band(on) != _band(forecast):
        return f"; judged with the priors and on its curve alone, pooled ({_band(on)})"
    if on.get("mean") is not None and f"{on['mean']:.4g}" != f"{forecast['mean']:.4g}":
        return f"; judged on the curve's level: {on['mean']:.4g} ({_band(on)})"
    return ""


def _band(b: dict) -> str:
    """A 90% band as the line shows it (and compares it: to its 4 significant digits)."""
    return f"90%: {b['lower']:.4g}-{b['upper']:.4g}"


def _body(alert: Alert, rule: AlertRule) -> dict:
    if rule.channel == "slack":
        return {"text": slack_text(alert)}
    return {"id": alert.id, "event": alert.event, "fired_at": alert.fired_at.isoformat(),
            **alert.payload}


def deliver_alert(settings: Settings, alert_id: int) -> str:
    """Make one delivery attempt of a pending alert; returns its state afterwards."""
    with session_scope(settings.database_url) as session:
        claimed = claim_alert(session, alert_id, settings.alert_lease_s)
    if claimed is None:
        return "not due"
    alert, rule = claimed
    error = None
    try:
        check_webhook_url(rule.url, settings.webhook_allow_private)
        response = httpx.post(rule.url, json=_body(alert, rule), timeout=TIMEOUT_S)
        if response.status_code >= 300:
            error = f"HTTP {response.status_code}: {response.text[:200]}"
    except (httpx.HTTPError, UnsafeUrl) as exc:
        error = f"{type(exc).__name__}: {exc}"
    with session_scope(settings.database_url) as session:
        row = session.get(Alert, alert_id)
        record_attempt(row, error)
        state = row.state
    if error:
        log.warning("alert %s attempt failed: %s", alert_id, error)
    return state
