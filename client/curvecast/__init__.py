"""Curvecast logging client: log metrics without slowing the loop, read forecasts and stops.

run = curvecast.init(project="lm", total_steps=10_000)
run.log({"loss": loss, "lr": lr}, step=i)
if run.should_stop: ...
"""

from curvecast.errors import CurvecastError, ServerError, ServerUnavailable
from curvecast.run import Run, RunStats, init

__version__ = "0.1.0"

__all__ = [
    "CurvecastError",
    "Run",
    "RunStats",
    "ServerError",
    "ServerUnavailable",
    "__version__",
    "init",
]
