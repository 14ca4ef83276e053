"""Settings from the environment (CURVECAST_*), validated once and cached.

Nothing is built at import time: callers ask `get_settings()` when they need it, and tests
or the CLI build a `Settings` explicitly.
"""

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_HOME = Path(".curvecast")


class Settings(BaseSettings):
    """Every knob of the server and the workers; see README for what each means."""

    model_config = SettingsConfigDict(env_prefix="CURVECAST_", extra="ignore")

    database_url: str = f"sqlite:///{DEFAULT_HOME / 'curvecast.db'}"
    # Empty means "run jobs in-process" (the embedded default).
    broker_url: str = ""
    admin_key: str = ""
    # Runs with no heartbeat or metrics for this long become `crashed`.
    stale_after_s: float = Field(default=600.0, gt=0)
    sweep_every_s: float = Field(default=30.0, gt=0)
    # A forecast request older than this with no result is assumed lost and re-enqueued.
    forecast_requeue_after_s: float = Field(default=120.0, gt=0)
    max_rows_per_batch: int = Field(default=10_000, gt=0)
    max_key_length: int = Field(default=256, gt=0)
    max_body_bytes: int = Field(default=64 * 1024 * 1024, gt=0)
    webhook_allow_private: bool = False
    # How long a worker delivering an alert holds it: if the worker dies mid-attempt, the sweep
    # sends the alert again after this. Longer than a webhook's timeout (5 s, workers.delivery)
    # plus the database's round trips, so no live attempt is ever doubled.
    alert_lease_s: float = Field(default=60.0, gt=5)
    # Where people open the dashboard; alerts link to runs there.
    public_url: str = "http://127.0.0.1:8000"

    @property
    def is_embedded(self) -> bool:
        """True when jobs run inside the API process (no broker configured)."""
        return not self.broker_url

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache
def get_settings() -> Settings:
    return Settings()
