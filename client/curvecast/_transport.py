"""One HTTP attempt per call, classified as done, retryable or refused.

Retrying lives with the callers (the sender thread retries forever into its spool, `sync` gives
up after a few tries), so this module only decides *whether* a failure is worth retrying:
connection errors, timeouts, 5xx and 429 are; any other 4xx is not.
"""

from __future__ import annotations

import random
from typing import Any
from urllib.parse import quote

import httpx

from curvecast._spool import CREATE, ROWS, Op
from curvecast.errors import ServerError, ServerUnavailable

USER_AGENT = "curvecast-client/0.1"


class Transport:
    """A keep-alive connection to one server under one API key; not shared between threads."""

    def __init__(self, url: str, api_key: str, timeout: float = 10.0) -> None:
        self._client = httpx.Client(
            base_url=url.rstrip("/") + "/api/v1",
            headers={"Authorization": f"Bearer {api_key}", "User-Agent": USER_AGENT},
            timeout=httpx.Timeout(timeout, connect=min(timeout, 3.0)),
        )

    def close(self) -> None:
        self._client.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        content: bytes | None = None,
        json: Any = None,
        params: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Send once; return the JSON answer, or raise ServerUnavailable / ServerError."""
        headers = {"Content-Type": "application/json"} if content is not None else None
        try:
            resp = self._client.request(
                method, path, content=content, json=json, params=params, headers=headers
            )
        except httpx.TransportError as exc:  # connect errors, timeouts, broken connections
            raise ServerUnavailable(f"{type(exc).__name__}: {exc}") from exc
        if resp.status_code == 429 or resp.status_code >= 500:
            raise ServerUnavailable(
                f"server answered {resp.status_code}", _retry_after(resp.headers)
            )
        if resp.status_code >= 400:
            raise ServerError(resp.status_code, _detail(resp))
        return resp.json() if resp.content else {}

    def deliver(self, run_id: str, op: Op) -> dict[str, Any]:
        """Send one spooled operation to the endpoint that its kind names."""
        run = f"/runs/{quote(run_id, safe='')}"
        if op.kind == ROWS:
            return self.request("POST", f"{run}/metrics", content=op.body)
        if op.kind == CREATE:
            return self.request("POST", "/runs", content=op.body)
        return self.request("PATCH", run, content=op.body)

    def heartbeat(self, run_id: str) -> dict[str, Any]:
        return self.request("POST", f"/runs/{quote(run_id, safe='')}/heartbeat")

    def forecast(self, run_id: str, key: str) -> dict[str, Any]:
        return self.request("GET", f"/runs/{quote(run_id, safe='')}/forecast/{quote(key, safe='')}")


class Backoff:
    """Exponential delays with equal jitter, so clients that lost the same server spread out."""

    def __init__(self, base: float = 0.25, cap: float = 5.0) -> None:
        self._base = base
        self._cap = cap
        self._attempt = 0

    def next_delay(self, hint: float | None = None) -> float:
        ceiling = min(self._cap, self._base * 2**self._attempt)
        self._attempt += 1
        delay = ceiling / 2 + random.random() * ceiling / 2
        return max(delay, min(hint, 60.0)) if hint else delay

    def reset(self) -> None:
        self._attempt = 0


def _retry_after(headers: httpx.Headers) -> float | None:
    try:
        return float(headers["Retry-After"])
    except (KeyError, ValueError):
        return None


def _detail(resp: httpx.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:500]
    detail = body.get("detail", body) if isinstance(body, dict) else body
    return str(detail)[:500]
