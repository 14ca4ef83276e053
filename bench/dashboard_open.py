"""How long the run page takes to show a run with 1,000,000 points per metric.

    .venv/bin/python -m bench.dashboard_open

A fresh `curvecast up` on Postgres; one run logs 1,000,000 steps of `loss` and `lr`, another
(the anchor) 1,000 steps; both get their forecast. Debian's chromium (headless, Playwright)
signs in and opens each run page 7 times; the time is from navigation to the loss chart
drawn with its observed curve and forecast band. Target: under 1 s for the long run.
"""

from __future__ import annotations

import math
import statistics
import time

import httpx
import orjson
from playwright.sync_api import sync_playwright

from bench.servers import ADMIN_KEY, curvecast_server, fresh_database
from tests.e2e.conftest import CHROMIUM_ARGS

DRAWN = """() => { const d = document.querySelector(".plot[data-metric='loss']");
  return !!(d && d.data && ["observed", "forecast-band"].every(
    r => d.data.some(t => t.meta && t.meta.role === r))); }"""


def log_run(c: httpx.Client, name: str, steps: int) -> str:
    schedule = {"type": "cosine", "peak_lr": 3e-4, "warmup_steps": steps // 100,
                "total_steps": steps * 2}
    run = c.post("/api/v1/runs", json={"project": "bench-dashboard", "name": name,
                                       "total_steps": steps * 2, "lr_schedule": schedule})
    run_id = run.json()["id"]
    for start in range(0, steps, 10_000):
        rows = [{"step": s, "values": {"loss": 2 + 3 * (s + 100) ** -0.3
                                       + 0.01 * math.sin(s), "lr": 3e-4}}
                for s in range(start, min(start + 10_000, steps))]
        c.post(f"/api/v1/runs/{run_id}/metrics", content=orjson.dumps({"rows": rows}),
               headers={"Content-Type": "application/json"}).raise_for_status()
    deadline = time.monotonic() + 300
    while c.get(f"/api/v1/runs/{run_id}/forecast/loss").json()["status"] != "ready":
        if time.monotonic() > deadline:
            raise RuntimeError(f"no forecast for {name}")
        time.sleep(0.2)
    return run_id


def open_times(base: str, run_id: str, repeats: int = 7) -> list[float]:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        context = browser.new_context(base_url=base, viewport={"width": 1280, "height": 900})
        page = context.new_page()
        assert page.request.post("/api/v1/session", data={"key": ADMIN_KEY}).ok
        page.goto("/")
        times = []
        for _ in range(repeats):
            page.goto("about:blank")
            start = time.perf_counter()
            page.goto(f"{base}/#/run/{run_id}")
            page.wait_for_function(DRAWN, timeout=30_000)
            times.append(time.perf_counter() - start)
        browser.close()
    return times


def main() -> None:
    with curvecast_server(fresh_database("curvecast_dashboard")) as base, httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=120) as c:
        long_id, short_id = log_run(c, "long", 1_000_000), log_run(c, "short", 1_000)
        long_t, short_t = open_times(base, long_id), open_times(base, short_id)
    lm, sm = statistics.median(long_t), statistics.median(short_t)
    print(f"run page, 1,000,000 points per metric: median {lm * 1e3:.0f} ms, "
          f"max {max(long_t) * 1e3:.0f} ms")
    print(f"run page, 1,000 points per metric (anchor): median {sm * 1e3:.0f} ms; "
          f"ratio {lm / sm:.2f}x")


if __name__ == "__main__":
    main()
