"""The dashboard in a real browser: sign-in, projects, the runs table, a run's forecast
chart, the comparison, live updates, and the empty and error states."""

import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.api.test_shared_batches import TOTAL as SHARED_TOTAL
from tests.api.test_shared_batches import log as log_shared
from tests.api.test_shared_batches import loss_of
from tests.e2e.conftest import KEY, ROOT, screenshot, update_docs
from tests.e2e.seed import TOTAL_STEPS, create_run, log_points, wait_for_forecasts, wsd_lr
from tests.waiting import wait_until

pytestmark = pytest.mark.browser

TRACES = """sel => document.querySelector(sel).data.map(t => ({
  role: t.meta && t.meta.role, x: Array.from(t.x), y: Array.from(t.y), opacity: t.opacity,
  yaxis: t.yaxis || "y"}))"""
DRAWN = """([sel, role]) => { const d = document.querySelector(sel);
  return !!(d && d.data && d.data.some(t => t.meta && t.meta.role === role)); }"""
LOSS_PLOT = ".plot[data-metric='loss']"


def traces(page: Page, selector: str) -> list[dict]:
    return page.evaluate(TRACES, selector)


def by_role(page: Page, selector: str, role: str) -> list[dict]:
    return [t for t in traces(page, selector) if t["role"] == role]


def wait_drawn(page: Page, selector: str, role: str = "observed") -> None:
    page.wait_for_function(DRAWN, arg=[selector, role])


def row_names(page: Page) -> list[str]:
    return page.locator("table.runs tbody tr td:nth-child(2) a").all_inner_texts()


def test_sign_in_keeps_the_key_in_an_httponly_cookie_only(page: Page, seeded: dict):
    page.goto("/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("API key").fill("not-a-key")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("That key was not accepted")

    page.get_by_label("API key").fill(KEY)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Projects")).to_be_visible()
    expect(page.get_by_role("link", name=seeded["project"])).to_be_visible()
    screenshot(page, "projects")

    assert KEY not in page.url
    assert KEY not in page.evaluate("document.cookie")
    assert KEY not in page.evaluate("JSON.stringify({...localStorage, ...sessionStorage})")
    cookie = next(c for c in page.context.cookies() if c["value"] == KEY)
    assert cookie["httpOnly"]
    assert page.get_by_role("navigation", name="Main").get_by_role("link").all_inner_texts() == [
        "Projects"]  # no placeholder pages for APIs that do not exist yet

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert page.request.get("/api/v1/projects").status == 401


# Why the live run should stop, in words (a target has no run to pair with: no paired
# probability).
STOP_WHY = re.compile(r"^its val_loss forecast \d\.\d+ \[\d\.\d+, \d\.\d+\] ends worse "
                      r"than target 1(\.0)? with probability 100% "
                      r"\(threshold 90%, at \d+% of its steps\)\.$")


@pytest.fixture(scope="module")
def stopped(seeded: dict, api) -> str:
    """The live run told to stop by a real decision: a policy on sweep-b's val_loss that it
    cannot reach. Returns its id."""
    live_id = seeded["runs"]["live-wsd"]["id"]
    api.put(f"/api/v1/projects/{seeded['project']}/stop-policy", json={
        "metric": "val_loss", "reference": {"target": 1.0}, "group": "sweep-b",
        "threshold": 0.9, "min_progress": 0.1}).raise_for_status()
    rows = [{"step": s, "values": {"val_loss": 2.2 + 3.0 * (s + 50) ** -0.5}}
            for s in range(0, 781, 20)]
    api.post(f"/api/v1/runs/{live_id}/metrics", json={"rows": rows}).raise_for_status()
    wait_until(lambda: api.get(f"/api/v1/runs/{live_id}").json()["should_stop"], 60,
               "the server never decided to stop the live run")
    return live_id


def test_runs_table_shows_progress_forecasts_and_stop_flags(signed_in: Page, seeded: dict,
                                                            stopped: str, api):
    page = signed_in
    live_id = stopped

    page.goto(f"/#/p/{seeded['project']}")
    expect(page.locator("table.runs tbody tr")).to_have_count(4)
    live = page.locator(f"tr[data-run='{live_id}']")
    expect(live).to_contain_text("790 / 2,000")
    expect(live).to_contain_text("running")
    expect(live.locator("td").nth(7)).to_have_text(re.compile(r"^\d\.\d+ \[\d\.\d+, \d\.\d+\]$"))
    expect(live).to_have_class("stop")
    expect(live.locator(".flag-stop")).to_have_text("Stop")
    expect(page.locator(".flag-stop")).to_have_count(1)
    expect(live.locator(".flag-stop")).to_have_attribute("title", STOP_WHY)
    screenshot(page, "runs-table")

    last = {r["name"]: r["summary"]["loss"]["last_value"]
            for r in api.get("/api/v1/runs", params={"project": seeded["project"]}).json()["runs"]}
    page.click("button[data-sort='last']")
    expect(page.locator("th[aria-sort='ascending']")).to_contain_text("Last loss")
    assert row_names(page) == sorted(last, key=last.get)
    page.click("button[data-sort='last']")
    assert row_names(page) == sorted(last, key=last.get, reverse=True)

    page.select_option("select[name=status]", "running")
    assert row_names(page) == ["live-wsd"]
    page.select_option("select[name=status]", "")
    page.select_option("select[name=tag]", "sgd")
    assert row_names(page) == ["slow"]
    page.select_option("select[name=tag]", "")
    page.select_option("select[name=group]", "sweep-a")
    assert sorted(row_names(page)) == ["baseline", "slow", "wide"]
    page.select_option("select[name=group]", "")
    page.get_by_label("Config").fill("model.width>600 optimizer=adamw")
    assert sorted(row_names(page)) == ["live-wsd", "wide"]
    page.get_by_label("Config").fill("optimizer=lion")
    expect(page.get_by_text("No runs match these filters")).to_be_visible()
    page.get_by_role("button", name="Clear filters").click()
    expect(page.locator("table.runs tbody tr")).to_have_count(4)

    page.get_by_label("Select baseline to compare").check()
    page.get_by_label("Select wide to compare").check()
    page.get_by_role("button", name="Compare selected (2)").click()
    expect(page.get_by_role("heading", name="Compare 2 runs")).to_be_visible()
    ids = {seeded["runs"]["baseline"]["id"], seeded["runs"]["wide"]["id"]}
    assert set(page.url.split("ids=")[1].split(",")) == ids

    page.goto(f"/#/run/{live_id}")  # the run page says the same, as a banner
    expect(page.locator(".banner-stop")).to_have_text(
        re.compile(r"^Should stop: its val_loss forecast .* with probability 100%"))
    wait_drawn(page, LOSS_PLOT, "forecast-band")
    screenshot(page, "run-stop-banner")


def stop_reason_once_stopped(api, run: dict) -> dict:
    """The run's stop reasons, once the server has decided to stop it."""
    wait_until(lambda: api.get(f"/api/v1/runs/{run['id']}").json()["should_stop"], 120,
               f"the server never decided to stop {run['name']!r}")
    return api.get(f"/api/v1/runs/{run['id']}").json()["stop_reason"]


def test_a_warm_stop_says_it_was_judged_on_both_ways_pooled(signed_in: Page, api):
    # A group with three finished cosine runs and a policy against the best of them: a worse
    # run's forecast averages its curve alone with the finished runs' priors, and its stop is
    # judged on the two ways pooled, whose band the reason shows beside the forecast's own.
    cosine = {"type": "cosine", "peak_lr": 1e-3, "warmup_steps": 100, "final_lr": 0.0}
    project = "pooled-stop"
    for i, floor in enumerate((2.0, 1.95, 2.1)):
        done = create_run(api, project, f"done-{i}", group="g", lr_schedule=cosine)
        log_points(api, done, 0, TOTAL_STEPS + 1, floor, seed=20 + i)
        api.patch(f"/api/v1/runs/{done['id']}", json={"status": "finished"}).raise_for_status()
    api.put(f"/api/v1/projects/{project}/stop-policy", json={
        "metric": "loss", "reference": "best_finished", "group": "g", "threshold": 0.9,
        "min_progress": 0.1}).raise_for_status()
    worse = create_run(api, project, "worse", group="g", lr_schedule=cosine)
    log_points(api, worse, 0, 700, 2.6, seed=30)
    why = stop_reason_once_stopped(api, worse)
    assert why["decided_on"]["of"] == "pool"
    assert why["decided_on"]["upper"] - why["decided_on"]["lower"] > (
        why["forecast"]["upper"] - why["forecast"]["lower"])  # the pool is the wider

    page = signed_in
    page.goto(f"/#/run/{worse['id']}")
    expect(page.locator(".banner-stop")).to_have_text(re.compile(
        r"^Should stop: its loss forecast \d\.\d+ \[\d\.\d+, \d\.\d+\] \(judged with the "
        r"priors and on its curve alone, pooled: \[\d\.\d+, \d\.\d+\]\) ends worse than "
        r".*best finished"))
    wait_drawn(page, LOSS_PLOT, "forecast-band")  # the screenshot shows the band too
    screenshot(page, "run-stop-pooled")


def test_run_page_draws_forecast_band_boundary_and_schedule(signed_in: Page, seeded: dict,
                                                           api):
    page = signed_in
    run = seeded["runs"]["live-wsd"]
    fc = api.get(f"/api/v1/runs/{run['id']}/forecast/loss").json()
    assert fc["curve"].get("lr") is None  # its lr_schedule is drawn, not the forecast's lr
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if "/metrics/loss?" in r.url else None)
    page.goto(f"/#/run/{run['id']}")
    wait_drawn(page, LOSS_PLOT, "forecast-band")
    width = page.evaluate(f"document.querySelector(\"{LOSS_PLOT}\").clientWidth")
    assert asked and asked[0].endswith(f"max_points={2 * width}")  # two points per pixel
    caption = page.locator("figure.chart", has=page.locator(LOSS_PLOT)).locator("figcaption")
    expect(caption).to_contain_text("Forecast at step 2,000")
    expect(caption).to_contain_text(f"Model {fc['model']}")
    expect(caption.locator(".forecast-reason")).to_have_text(f". Why: {fc['reason']}")
    screenshot(page, "run-page")
    if update_docs():
        page.screenshot(path=str(ROOT / "docs" / "run-page.png"),
                        clip={"x": 0, "y": 0, "width": 1280, "height": 720})

    drawn = traces(page, LOSS_PLOT)
    roles = [t["role"] for t in drawn]
    for role in ("observed", "forecast-mean", "forecast-band", "lr-logged", "lr-planned"):
        assert role in roles, roles
    assert "forecast-final" not in roles  # its runs' batches differ: the curve's end says it
    observed = by_role(page, LOSS_PLOT, "observed")[0]
    assert observed["x"][-1] == 790
    mean = by_role(page, LOSS_PLOT, "forecast-mean")[0]
    assert mean["x"][-1] == run["total_steps"]
    band = by_role(page, LOSS_PLOT, "forecast-band")[0]
    assert len(band["x"]) == 2 * len(mean["x"])  # upper out, lower back: one closed band
    shapes = page.evaluate(f"document.querySelector(\"{LOSS_PLOT}\").layout.shapes")
    edge = next(s for s in shapes if s["name"] == "forecast-boundary")
    assert edge["x0"] == edge["x1"] == fc["fitted_upto_step"]

    planned = by_role(page, LOSS_PLOT, "lr-planned")[0]
    logged = by_role(page, LOSS_PLOT, "lr-logged")[0]
    assert planned["yaxis"] == logged["yaxis"] == "y2"
    assert planned["x"][0] == logged["x"][-1] == 790 and planned["x"][-1] == 2000
    for step, lr in zip(planned["x"], planned["y"], strict=True):
        assert lr == pytest.approx(wsd_lr(step, 1e-3), abs=1e-12), step

    page.locator("#smoothing").fill("0.9")
    wait_drawn(page, LOSS_PLOT, "smoothed")
    assert by_role(page, LOSS_PLOT, "observed")[0]["opacity"] < 1  # raw stays, faded
    page.get_by_label("Tokens").check()
    page.wait_for_function(f"document.querySelector(\"{LOSS_PLOT}\").data[0].x.at(-1) > 1e6")
    assert by_role(page, LOSS_PLOT, "observed")[0]["x"][-1] == 790 * 524288
    page.get_by_label("Log y").check()
    page.get_by_label("Log x").check()
    layout = page.evaluate(f"document.querySelector(\"{LOSS_PLOT}\").layout")
    assert layout["yaxis"]["type"] == layout["xaxis"]["type"] == "log"
    edge = next(s for s in layout["shapes"] if s["name"] == "forecast-boundary")
    assert edge["x0"] == fc["fitted_upto_step"] * 524288
    expect(page.get_by_role("table").filter(has_text="Config")).to_contain_text("model.width")


T0 = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC
SECONDS_PER_STEP = 0.5
DATE_X = "%Y-%m-%d %H:%M:%S.%f"


def zone_offsets(page: Page, times: list[float]) -> list[int]:
    """The browser's UTC offset in minutes (JS sign: UTC - local) at each unix time."""
    return page.evaluate("ts => ts.map(t => new Date(t * 1000).getTimezoneOffset())", times)


def as_date_x(t: float, offset: int) -> str:
    """Unix seconds as the dashboard writes them on a date axis: local time, to the ms."""
    local = datetime.fromtimestamp(t, UTC) - timedelta(minutes=offset)
    return local.strftime(DATE_X)[:-3]


def from_date_x(x: str, offset: int) -> float:
    local = datetime.strptime(x, DATE_X).replace(tzinfo=UTC)
    return (local + timedelta(minutes=offset)).timestamp()


def test_wall_time_axis_places_points_at_their_times_and_the_forecast_at_the_pace(
    signed_in: Page, api, project: str
):
    page = signed_in
    run = create_run(api, project, "timed", lr_schedule={
        "type": "wsd", "peak_lr": 1e-3, "warmup_steps": 100, "decay_start": 1600})
    log_points(api, run, 0, 800, 2.0, seed=5,
               time_of=lambda step: T0 + step * SECONDS_PER_STEP)
    wait_for_forecasts(api, [run["id"]])
    fc = api.get(f"/api/v1/runs/{run['id']}/forecast/loss").json()
    assert fc["status"] == "ready", fc
    page.goto(f"/#/run/{run['id']}")
    wait_drawn(page, LOSS_PLOT, "forecast-band")
    wall = page.get_by_label("Wall time")
    expect(wall).to_be_enabled()
    wall.check()
    page.wait_for_function(
        f"document.querySelector(\"{LOSS_PLOT}\").layout.xaxis.type === 'date'")

    observed = by_role(page, LOSS_PLOT, "observed")[0]
    steps = list(range(0, 800, 10))
    times = [T0 + s * SECONDS_PER_STEP for s in steps]
    offsets = zone_offsets(page, times)
    assert observed["x"] == [as_date_x(t, o) for t, o in zip(times, offsets, strict=True)]
    assert observed["x"][0] == as_date_x(T0, offsets[0])

    # The forecast (in steps) sits at the time the run reaches each step at its pace (2/s).
    mean = by_role(page, LOSS_PLOT, "forecast-mean")[0]
    offset = offsets[-1]
    last_t = from_date_x(observed["x"][-1], offset)
    mean_t = [from_date_x(x, offset) for x in mean["x"]]
    assert mean_t[0] >= last_t
    assert mean_t[0] > last_t or fc["curve"]["step"][0] <= 790
    for step, t in zip(fc["curve"]["step"], mean_t, strict=True):
        assert t == pytest.approx(T0 + step * SECONDS_PER_STEP, abs=1.0), step
    assert mean_t[-1] == pytest.approx(T0 + 2000 * SECONDS_PER_STEP, abs=1.0)
    layout = page.evaluate(f"document.querySelector(\"{LOSS_PLOT}\").layout")
    edge = next(s for s in layout["shapes"] if s["name"] == "forecast-boundary")
    assert from_date_x(edge["x0"], offset) == pytest.approx(
        T0 + fc["fitted_upto_step"] * SECONDS_PER_STEP, abs=1.0)
    planned = by_role(page, LOSS_PLOT, "lr-planned")[0]
    assert from_date_x(planned["x"][-1], offset) == pytest.approx(T0 + 1000, abs=1.0)
    expect(page.get_by_label("Log x")).to_be_disabled()  # a date axis has no log scale
    caption = page.locator("figcaption").first
    # steps 790 -> 2000 at 2 steps/s: 605 s after the last point
    expect(caption).to_contain_text(
        "at the current pace: 10 min 5 s after the last logged point (2 steps/s")
    eta = page.evaluate("""t => new Date(t * 1000).toLocaleString("en-GB", {year: "numeric",
        month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
        second: "2-digit"})""", T0 + 2000 * SECONDS_PER_STEP)
    expect(caption).to_contain_text(f"ETA {eta}")
    screenshot(page, "wall-time")

    # Points without times (older clients): the option is off and says why.
    def untimed(route):
        response = route.fetch()
        body = response.json()
        body["time"] = [None] * len(body["step"])
        route.fulfill(response=response, json=body)

    page.route(re.compile(r"/metrics/[^?]+\?max_points="), untimed)
    page.reload()
    wait_drawn(page, LOSS_PLOT, "forecast-band")
    wall = page.get_by_label("Wall time")
    expect(wall).to_be_disabled()
    expect(page.locator("label", has=wall)).to_have_attribute(
        "title", re.compile("wall-clock times"))
    assert page.evaluate(f"document.querySelector(\"{LOSS_PLOT}\").layout.xaxis.type") \
        == "linear"


def test_compare_overlays_runs_with_bands_and_lists_config_differences(signed_in: Page,
                                                                      seeded: dict,
                                                                      stopped: str):
    page = signed_in
    names = ["baseline", "wide", "live-wsd"]
    ids = ",".join(seeded["runs"][n]["id"] for n in names)
    page.goto(f"/#/compare?ids={ids}")
    wait_drawn(page, "figure.chart .plot", "forecast-band")
    drawn = traces(page, "figure.chart .plot")
    assert [t["role"] for t in drawn].count("observed") == 3
    assert [t["role"] for t in drawn].count("forecast-band") == 3
    diff = page.locator("table.config-diff")
    expect(diff.locator("tbody tr")).to_have_count(1)
    expect(diff.locator("tbody tr")).to_have_text(re.compile(r"model\.width\s*512\s*1024\s*768"))
    expect(diff).to_contain_text("2 keys are the same in all runs")
    # The stop flag says why, as in the runs table: here it is about val_loss, not the loss
    # on show, which is why the row's own P(underperform) for loss is empty.
    summary = page.locator("table.compare-summary tbody tr")
    expect(summary.locator(".flag-stop")).to_have_count(1)
    expect(summary.filter(has_text="live-wsd").locator(".flag-stop")).to_have_attribute(
        "title", STOP_WHY)
    screenshot(page, "compare")


def test_an_lr_logged_as_learning_rate_overlays_the_loss_like_lr(signed_in: Page, api,
                                                                 project: str):
    # HF Trainer's name for it, and no lr_schedule: the logged lr is all there is. Its linear
    # decay to total_steps is read off it, and the chart draws the lr the forecast assumed.
    run = create_run(api, project, "hf-style")
    rows = [{"step": s, "values": {"loss": 2.0 + 3.0 * (s + 50) ** -0.3,
                                   "learning_rate": 1e-3 * (1 - s / 2000)}}
            for s in range(0, 600, 10)]
    api.post(f"/api/v1/runs/{run['id']}/metrics", json={"rows": rows}).raise_for_status()
    assert api.get(f"/api/v1/runs/{run['id']}").json()["lr_key"] == "learning_rate"
    wait_for_forecasts(api, [run["id"]])
    fc = api.get(f"/api/v1/runs/{run['id']}/forecast/loss").json()
    read = "a linear decay from its peak at step 0 to 0 at step 2,000"
    assert fc["status"] == "ready" and read in fc["reason"], fc["reason"]
    page = signed_in
    page.goto(f"/#/run/{run['id']}")
    wait_drawn(page, LOSS_PLOT, "lr-assumed")
    logged = by_role(page, LOSS_PLOT, "lr-logged")[0]
    assert logged["x"][-1] == 590 and abs(logged["y"][-1] - 1e-3 * (1 - 590 / 2000)) < 1e-9
    assumed = by_role(page, LOSS_PLOT, "lr-assumed")[0]
    assert assumed["x"] == fc["curve"]["step"] and assumed["x"][-1] == 2000
    assert assumed["y"] == pytest.approx([1e-3 * (1 - s / 2000) for s in assumed["x"]],
                                         abs=1e-9)
    assert "lr-planned" not in [t["role"] for t in traces(page, LOSS_PLOT)]
    screenshot(page, "run-lr-read-off-the-logged-lr")
    # It overlays the loss instead of getting a chart of its own.
    expect(page.locator(".plot[data-metric='learning_rate']")).to_have_count(0)


def mark_provisional(page: Page, run_id: str) -> list[bool]:
    """While the returned switch's [0] is True, the API's ready loss forecast of the run is
    marked provisional in flight: a real provisional forecast lasts about a second in the
    service, too short to catch in a browser."""
    marking = [True]

    def provisional(route):
        response = route.fetch()
        body = response.json()
        if marking[0] and body.get("status") == "ready":
            body["provisional"] = True
        route.fulfill(response=response, json=body)

    page.route(re.compile(rf"/api/v1/runs/{re.escape(run_id)}/forecast/loss$"), provisional)
    return marking


def test_a_provisional_forecast_is_marked_and_the_page_waits_for_the_final_one(
        signed_in: Page, seeded: dict):
    page = signed_in
    run = seeded["runs"]["baseline"]  # finished: only a forecast still to come keeps polling
    marking = mark_provisional(page, run["id"])
    page.goto(f"/#/run/{run['id']}")
    caption = page.locator("figure.chart", has=page.locator(LOSS_PLOT)).locator("figcaption")
    expect(caption.locator(".forecast-provisional")).to_contain_text(
        "provisional: this step's replays of the finished runs are still being made; the final "
        "forecast follows")
    screenshot(page, "run-provisional")
    marking[0] = False
    expect(caption.locator(".forecast-provisional")).to_have_count(0, timeout=10_000)
    expect(caption).to_contain_text("Forecast at step 2,000")


def test_a_provisional_forecast_is_marked_in_the_runs_table_and_compare_till_the_final_one(
        signed_in: Page, seeded: dict):
    page = signed_in
    run = seeded["runs"]["baseline"]
    marking = mark_provisional(page, run["id"])
    page.goto(f"/#/p/{seeded['project']}")
    row = page.locator(f"tr[data-run='{run['id']}']")
    expect(row.locator(".forecast-provisional")).to_have_text("provisional")
    expect(row.locator(".forecast-provisional")).to_have_attribute(
        "title", re.compile(r"^provisional: this step's replays .* the final forecast follows$"))
    expect(page.locator(".forecast-provisional")).to_have_count(1)
    marking[0] = False  # the table asks again for a provisional forecast, and drops the mark
    expect(row.locator(".forecast-provisional")).to_have_count(0, timeout=10_000)

    # Compare: both runs finished, so only the provisional forecast keeps the page polling.
    marking[0] = True
    ids = ",".join(seeded["runs"][n]["id"] for n in ("baseline", "wide"))
    page.goto(f"/#/compare?ids={ids}")
    summary = page.locator("table.compare-summary tbody tr")
    expect(summary.filter(has_text="baseline").locator(".forecast-provisional")).to_have_count(1)
    expect(summary.locator(".forecast-provisional")).to_have_count(1)
    screenshot(page, "compare-provisional")
    marking[0] = False
    expect(summary.locator(".forecast-provisional")).to_have_count(0, timeout=10_000)
    expect(summary.filter(has_text="baseline")).to_contain_text(
        re.compile(r"\d\.\d+ \[\d\.\d+, \d\.\d+\]"))


def test_live_run_grows_while_the_chart_keeps_its_zoom(signed_in: Page, api, project: str):
    page = signed_in
    run = create_run(api, project, "growing", lr_schedule={
        "type": "wsd", "peak_lr": 1e-3, "warmup_steps": 100, "decay_start": 1600})
    log_points(api, run, 0, 400, 2.0, seed=3)
    page.goto(f"/#/run/{run['id']}")
    wait_drawn(page, LOSS_PLOT)
    page.evaluate(f"Plotly.relayout(document.querySelector(\"{LOSS_PLOT}\"), "
                  "{'xaxis.range': [50, 300]})")

    log_points(api, run, 400, 1000, 2.0, seed=3)
    page.wait_for_function(
        f"document.querySelector(\"{LOSS_PLOT}\").data[0].x.at(-1) >= 990", timeout=15_000)
    expect(page.locator(".facts")).to_contain_text("990 / 2,000")
    assert page.evaluate(
        f"document.querySelector(\"{LOSS_PLOT}\").layout.xaxis.range") == [50, 300]
    screenshot(page, "live-zoomed")


def test_project_without_runs_shows_the_client_code_then_its_first_run(
    signed_in: Page, api, pg_url: str, project: str
):
    page = signed_in
    cli = Path(sys.executable).parent / "curvecast"
    subprocess.run([str(cli), "keys", "create", "--project", project, "--db", pg_url],
                   check=True, capture_output=True, cwd=ROOT)
    page.goto(f"/#/p/{project}")
    expect(page.get_by_role("heading", name="No runs yet")).to_be_visible()
    code = page.get_by_label("Python client code")
    expect(code).to_contain_text(f'run = curvecast.init(project="{project}", total_steps=10000)')
    expect(code).to_contain_text('run.log({"loss": loss}, step=step)')
    expect(code).to_contain_text("run.finish()")
    screenshot(page, "empty-project")

    create_run(api, project, "first")
    expect(page.locator("table.runs tbody tr")).to_have_count(1, timeout=10_000)


def test_unknown_run_says_what_happened_and_how_to_go_on(signed_in: Page):
    page = signed_in
    page.goto("/#/run/no-such-run")
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("Not found")
    expect(alert).to_contain_text("run 'no-such-run' not found")
    expect(alert.get_by_role("link", name="Back to projects")).to_be_visible()
    screenshot(page, "unknown-run")


def test_a_schedule_of_many_knots_reads_as_its_span_with_the_list_folded(signed_in: Page, api):
    # A schedule sent as the lr a run logged: a knot per logged step (the tinylm runs: 192).
    knots = [[0, 0.0], [100, 1e-3]] + [[s, round(1e-3 * (1 - s / 2500), 9)]
             for s in range(110, 2001, 10)]
    run = create_run(api, "knots", "logged-lr", lr_schedule={"knots": knots})
    page = signed_in
    page.goto(f"/#/run/{run['id']}")
    cell = page.locator("table.kv", has_text="Learning-rate schedule").locator(
        "tr", has=page.locator("th", has_text="knots")).locator("td")
    expect(cell).to_contain_text(f"{len(knots)} knots, steps 0 to 2,000, lr 0 to 0.001")
    folded = cell.locator("details.knots")
    expect(folded.locator("code")).to_be_hidden()
    folded.locator("summary").click()
    expect(folded.locator("code")).to_contain_text("[2000,0.0002]")
    short = create_run(api, "knots", "short", lr_schedule={"knots": knots[:3]})
    page.goto(f"/#/run/{short['id']}")
    expect(page.locator("table.kv td", has_text="[[0,0],[100,0.001]")).to_be_visible()


def test_a_stop_in_a_sweep_on_one_data_order_shows_the_level_it_was_judged_on(signed_in: Page,
                                                                               api):
    # Two finished runs that saw the same batches as a worse live one: its forecast of the
    # value to be logged at step 2,000 moves with their shared wiggle there (4% down), while
    # the stop compares levels, which the banner shows beside it.
    project = "one-order"
    for i, level in enumerate((0.98, 1.02)):
        done = create_run(api, project, f"done-{i}", group="g", total_steps=SHARED_TOTAL)
        log_shared(api, done["id"], loss_of(level, i), SHARED_TOTAL)
        api.patch(f"/api/v1/runs/{done['id']}", json={"status": "finished"}).raise_for_status()
    api.put(f"/api/v1/projects/{project}/stop-policy", json={
        "metric": "loss", "reference": "best_finished", "group": "g", "threshold": 0.9,
        "min_progress": 0.1}).raise_for_status()
    worse = create_run(api, project, "worse", group="g", total_steps=SHARED_TOTAL)
    log_shared(api, worse["id"], loss_of(1.10, 9), SHARED_TOTAL // 2)
    why = stop_reason_once_stopped(api, worse)
    assert why["decided_on"]["of"] == "level"
    assert why["decided_on"]["mean"] > why["forecast"]["mean"] * 1.02  # the 4% dip is not in it

    page = signed_in
    page.goto(f"/#/run/{worse['id']}")
    expect(page.locator(".banner-stop")).to_have_text(re.compile(
        r"^Should stop: its loss forecast \d\.\d+ \[\d\.\d+, \d\.\d+\] \(judged on the curve's "
        r"level, without the batch noise at that step: \d\.\d+ \[\d\.\d+, \d\.\d+\]\) ends "
        r"worse than .*best finished"))
    # The curve runs to the target at the level; the value logged there is a point off it.
    wait_drawn(page, LOSS_PLOT, "forecast-final")
    final = by_role(page, LOSS_PLOT, "forecast-final")[0]
    mean = by_role(page, LOSS_PLOT, "forecast-mean")[0]
    assert final["x"] == [SHARED_TOTAL] and mean["x"][-1] == SHARED_TOTAL
    assert final["y"][0] == pytest.approx(why["forecast"]["mean"])
    assert mean["y"][-1] > final["y"][0] * 1.02  # the shared 4% dip is in the point only
    screenshot(page, "run-stop-shared-batches")
