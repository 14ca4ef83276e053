"""The project's Scaling and Alerts pages in a real browser: a scaling law fitted through the
form and drawn with its frontier, a planned run predicted; an alert rule refused and then
accepted, a stop policy set, and a run the server tells to stop shown with its reasons."""


import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.alerts.test_alerts import Receiver
from tests.e2e.conftest import screenshot
from tests.e2e.seed import (
    LADDER_PARAMS,
    LADDER_TOKENS,
    create_run,
    law_loss,
    log_points,
    seed_ladder,
    wait_for_forecasts,
)
from tests.waiting import wait_until

pytestmark = pytest.mark.browser

SCALING_PLOT = ".plot[data-chart='scaling']"
TRACES = """sel => document.querySelector(sel).data.map(t => ({
  role: t.meta && t.meta.role, x: Array.from(t.x), y: Array.from(t.y)}))"""
DRAWN = """([sel, role]) => { const d = document.querySelector(sel);
  return !!(d && d.data && d.data.some(t => t.meta && t.meta.role === role)); }"""


def by_role(page: Page, role: str) -> list[dict]:
    return [t for t in page.evaluate(TRACES, SCALING_PLOT) if t["role"] == role]


@pytest.fixture(scope="module")
def ladder(api: httpx.Client) -> str:
    project = "ladder"
    seed_ladder(api, project)
    return project


@pytest.fixture(scope="module")
def stoppable(api: httpx.Client) -> dict:
    """A finished good run and a clearly worse one still running at 40% of its steps."""
    project = "alerting"
    cosine = {"type": "cosine", "peak_lr": 1e-3, "warmup_steps": 100, "final_lr": 0.0}
    good = create_run(api, project, "good", lr_schedule=cosine)
    log_points(api, good, 0, 2001, 2.0, seed=1)
    api.patch(f"/api/v1/runs/{good['id']}", json={"status": "finished"}).raise_for_status()
    worse = create_run(api, project, "worse", lr_schedule=cosine)
    log_points(api, worse, 0, 800, 3.0, seed=2)
    wait_for_forecasts(api, [good["id"], worse["id"]])
    return {"project": project, "good": good, "worse": worse}


def test_scaling_page_fits_draws_and_predicts(signed_in: Page, ladder: str):
    page = signed_in
    page.goto(f"/#/p/{ladder}/scaling")
    tabs = page.get_by_role("navigation", name="Project")
    expect(tabs.get_by_role("link", name="Scaling")).to_have_attribute("aria-current", "page")
    expect(page.get_by_role("heading", name="No scaling fits yet")).to_be_visible()
    expect(page.get_by_text("9 of 9 runs carry params and tokens.")).to_be_visible()

    # Three runs cannot pin down chinchilla's five parameters: the page says so and why.
    page.get_by_label("Law").select_option("chinchilla")
    page.get_by_label("Tags").fill("small")
    page.get_by_role("button", name="Fit law").click()
    expect(page.get_by_role("heading", name="Not enough data")).to_be_visible(timeout=15_000)
    expect(page.locator(".fit-detail")).to_contain_text("need at least 6")
    screenshot(page, "scaling-insufficient")

    page.get_by_label("Metric").select_option("val_loss")
    page.get_by_label("Law").select_option("chinchilla")
    page.get_by_label("Group").select_option("ladder")
    page.get_by_label("Tags").fill("")
    page.get_by_role("button", name="Fit law").click()
    expect(page.locator(".fit-detail h2 .status")).to_have_text("ready", timeout=15_000)
    page.wait_for_function(DRAWN, arg=[SCALING_PLOT, "frontier"])

    points = by_role(page, "runs")
    assert len(points) == len(LADDER_PARAMS)  # one colour per model size
    xs, ys = (sum((t[k] for t in points), []) for k in ("x", "y"))
    drawn = sorted(zip(xs, ys, strict=True))
    expected = sorted((6 * n * d, law_loss(n, d)) for n in LADDER_PARAMS for d in LADDER_TOKENS)
    assert [x for x, _ in drawn] == pytest.approx([x for x, _ in expected])
    assert [y for _, y in drawn] == pytest.approx([y for _, y in expected], rel=0.02)
    lines = by_role(page, "law")
    assert len(lines) == len(LADDER_PARAMS) and all(len(t["x"]) == 20 for t in lines)
    for line, n in zip(lines, LADDER_PARAMS, strict=True):  # the fitted law is near the truth
        d = line["x"][10] / (6 * n)
        assert line["y"][10] == pytest.approx(law_loss(n, d), rel=0.03)
    frontier = by_role(page, "frontier")[0]
    assert len(frontier["x"]) == 20 and frontier["y"] == sorted(frontier["y"], reverse=True)
    expect(page.locator(".params")).to_contain_text("alpha")

    page.get_by_label("Planned N (parameters)").fill("5e7")
    page.get_by_label("Planned D (tokens)").fill("1e9")
    page.get_by_role("button", name="Predict").click()
    result = page.locator("output.prediction")
    expect(result).to_contain_text("90% interval")
    lower, upper = (float(result.get_attribute(f"data-{k}")) for k in ("lower", "upper"))
    assert lower <= law_loss(5e7, 1e9) <= upper
    page.wait_for_function(DRAWN, arg=[SCALING_PLOT, "planned"])
    screenshot(page, "scaling")


def test_alerts_page_rules_policy_and_stop_decisions(signed_in: Page, stoppable: dict, api):
    page = signed_in
    project, worse = stoppable["project"], stoppable["worse"]
    receiver = Receiver()
    receiver.start()
    try:
        _alerts_page(page, api, project, worse, receiver)
    finally:
        receiver.stop()


def _alerts_page(page: Page, api: httpx.Client, project: str, worse: dict,
                 receiver: Receiver) -> None:
    page.goto(f"/#/p/{project}/alerts")
    expect(page.get_by_text("none will be until a stop policy is set")).to_be_visible()

    url = page.get_by_label("Webhook URL")
    page.get_by_label("diverged").check()
    url.fill("ftp://example.org/hook")
    page.get_by_role("button", name="Add rule").click()
    error = page.locator("#rule-url-error")
    expect(error).to_contain_text("http:// or https://")
    expect(url).to_have_attribute("aria-invalid", "true")
    screenshot(page, "alerts-refused-url")
    # A real receiver, and a port nobody listens on (its delivery fails and is retried).
    for count, target in enumerate((receiver.url, "http://127.0.0.1:9/hook"), start=1):
        url.fill(target)
        page.get_by_role("button", name="Add rule").click()
        expect(page.locator("table.rules tbody tr")).to_have_count(count, timeout=15_000)
        expect(error).to_be_hidden()
    rules = api.get(f"/api/v1/projects/{project}/alert-rules").json()["rules"]
    assert all("should_stop" in r["events"] for r in rules) and len(rules) == 2

    page.get_by_label("Metric").select_option("loss")
    page.get_by_label("Compare with").select_option("best_finished")
    page.get_by_label("Stop at P(worse) ≥").fill("0.9")
    page.get_by_label("Not before progress").fill("0.1")
    page.get_by_role("button", name="Save policy").click()
    expect(page.locator("table.policies")).to_contain_text("whole project")
    expect(page.get_by_text("every forecast is close enough")).to_be_visible()

    # The next batch is forecast under the policy, and the server tells the run to stop.
    log_points(api, worse, 800, 1000, 3.0, seed=2)
    wait_until(lambda: api.get(f"/api/v1/runs/{worse['id']}").json()["should_stop"], 30,
               "the worse run was never told to stop")
    row = page.locator(f"table.decisions tr[data-run='{worse['id']}']")
    expect(row).to_contain_text("best finished run 'good'", timeout=10_000)
    expect(row).to_contain_text("100%")
    expect(row.get_by_role("link", name="worse")).to_be_visible()

    # The decision fired one alert per rule: delivered to the receiver, failing to the other.
    wait_until(lambda: receiver.received, 30, "the receiver got no alert")
    assert [(a["event"], a["run_id"]) for a in receiver.received] == [("should_stop", worse["id"])]
    log = page.locator("table.alerts")
    expect(log.locator("tbody tr")).to_have_count(2, timeout=15_000)
    expect(log).to_contain_text("ConnectError", timeout=15_000)
    expect(log).to_contain_text("delivered")
    expect(log.get_by_role("link", name="worse").first).to_have_attribute(
        "href", f"#/run/{worse['id']}")
    screenshot(page, "alerts")
