"""`curvecast up --demo`: simulated training runs that log live through the HTTP API with the
real client, so a new user sees tables, curves and forecasts within seconds."""

import math
import random
import threading
import time
from pathlib import Path

import curvecast
import httpx
from rich.console import Console

from backend.db import session_scope
from backend.runs.service import create_key
from backend.settings import DEFAULT_HOME, Settings

PROJECT = "demo"
TOTAL = 6000
PEAK = 3e-4


def _lr(step: int, shape: str) -> float:
    warm = 300
    if step < warm:
        return PEAK * step / warm
    if shape == "cosine":
        p = (step - warm) / (TOTAL - warm)
        return 3e-5 + (PEAK - 3e-5) * 0.5 * (1 + math.cos(math.pi * p))
    decay = int(TOTAL * 0.8)  # wsd: constant, then a linear cooldown over the last 20%
    return PEAK if step < decay else PEAK * (TOTAL - step) / (TOTAL - decay)


def _schedule(shape: str) -> dict:
    if shape == "cosine":
        return {"type": "cosine", "peak_lr": PEAK, "warmup_steps": 300, "total_steps": TOTAL,
                "final_lr": 3e-5}
    return {"type": "wsd", "peak_lr": PEAK, "warmup_steps": 300, "total_steps": TOTAL,
            "decay_start": int(TOTAL * 0.8), "decay_shape": "linear"}


def _simulate(name: str, shape: str, floor: float, seconds_per_step: float,
              url: str, key: str) -> None:
    """One run: loss falls with the LR area and drops further as the LR anneals."""
    rng = random.Random(name)
    # A fixed id: restarting the demo resumes these runs and re-logs nothing twice.
    run = curvecast.init(project=PROJECT, name=name, id=f"demo-{name}", group="ladder",
                         tags=[shape],
                         config={"schedule": shape, "floor": floor}, total_steps=TOTAL,
                         lr_schedule=_schedule(shape), url=url, api_key=key)
    area = 0.0
    for step in range(0, TOTAL, 10):
        lr = _lr(step, shape)
        area += lr / PEAK * 10
        annealed = 0.15 * (1 - lr / PEAK) * min(1.0, area / 3000)
        loss = floor + 3.0 * (1 + area / 200) ** -0.45 - annealed
        run.log({"loss": loss + rng.gauss(0, 0.01), "lr": lr}, step=step)
        if seconds_per_step:
            time.sleep(seconds_per_step)
    run.finish()


def _demo_key(settings: Settings) -> str:
    path = Path(DEFAULT_HOME) / "demo.key"
    if path.exists():
        return path.read_text().strip()
    with session_scope(settings.database_url) as session:
        key = create_key(session, PROJECT)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(key)
    path.chmod(0o600)
    return key


def start_demo(url: str, settings: Settings, console: Console) -> None:
    """Log two finished runs at once, then two live ones, in background threads."""
    key = _demo_key(settings)
    console.print(f"Demo: open {url} and sign in with the key [bold]{key}[/] "
                  f"(also in {DEFAULT_HOME / 'demo.key'})")

    def run_all() -> None:
        for _ in range(100):
            try:
                httpx.get(f"{url}/api/v1/health", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        finished = [("ladder-cosine-a", "cosine", 2.0), ("ladder-wsd-a", "wsd", 2.05)]
        for name, shape, floor in finished:
            _simulate(name, shape, floor, 0, url, key)
        live = [("ladder-cosine-b", "cosine", 1.95, 0.25), ("ladder-wsd-b", "wsd", 2.3, 0.25)]
        threads = [threading.Thread(target=_simulate, args=(*spec, url, key), daemon=True)
                   for spec in live]
        for t in threads:
            t.start()

    threading.Thread(target=run_all, name="curvecast-demo", daemon=True).start()
