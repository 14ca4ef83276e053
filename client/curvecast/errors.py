"""Errors raised to the caller.

Bad use of the API (a non-numeric value, a step going backwards, an unknown status) raises the
built-in ``TypeError``/``ValueError`` at the call site. The classes here are for answers from
the server, so a training script can tell "the server said no" from "the server is away".
"""

from __future__ import annotations


class CurvecastError(Exception):
    """Base class of every error this package raises about the server."""


class ServerError(CurvecastError):
    """The server refused a request (a 4xx other than 429); retrying would not help."""

    def __init__(self, status_code: int, detail: str) -> None:
        super().__init__(f"server answered {status_code}: {detail}")
        self.status_code = status_code
        self.detail = detail

    @property
    def auth(self) -> bool:
        """The key was refused, not the data: keep the data for a retry with a good key."""
        return self.status_code in (401, 403)


class ServerUnavailable(CurvecastError):
    """The server could not be reached, timed out, or answered 5xx/429: worth retrying."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after
