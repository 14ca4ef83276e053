"""The Slack line says what a stop compared where it differs from the value to be logged."""

from backend.models import Alert
from workers.delivery import slack_text

FORECAST = {"mean": 2.30, "lower": 2.25, "upper": 2.35, "target_step": 2000}


def _alert(decided_on: dict | None) -> Alert:
    details = {"metric": "loss", "forecast": FORECAST, "p_underperform": 0.95,
               "reference_label": "best finished run 'a' (2.342)"}
    if decided_on is not None:
        details["decided_on"] = decided_on
    return Alert(event="should_stop", payload={
        "run_name": "r", "dashboard_url": "http://x/#/run/1", "details": details})


def test_a_stop_judged_on_the_level_says_so_beside_the_value_to_be_logged():
    # A near-tie where the sweep's shared batch noise puts the logged value under the
    # reference while the level, which the stop compares, is over it.
    text = slack_text(_alert({"mean": 2.38, "lower": 2.36, "upper": 2.40, "of": "level"}))
    assert "Forecast loss at step 2000: 2.3 (90%: 2.25-2.35)" in text
    assert "judged on the curve's level: 2.38 (90%: 2.36-2.4)" in text
    assert text.index("judged on") < text.index("P(worse than best finished run 'a'")


def test_a_stop_judged_on_both_ways_pooled_shows_their_band_as_the_dashboard_does():
    # Same mean as the forecast shown, but the pool's band (with the priors, and the curve
    # alone) is wider: the Slack line says so, as the dashboard's stop reason does.
    text = slack_text(_alert({"mean": 2.30, "lower": 2.2, "upper": 2.4, "of": "pool"}))
    assert "judged with the priors and on its curve alone, pooled (90%: 2.2-2.4)" in text


def test_nothing_is_added_where_the_draws_decided_on_are_the_forecast_shown():
    assert "judged" not in slack_text(_alert({**FORECAST, "of": "pool"}))
    assert "judged" not in slack_text(_alert({**FORECAST, "of": "level"}))
    assert "judged" not in slack_text(_alert(None))  # stored before decided_on was kept
