"""One error type per HTTP status and one handler: every 4xx body names the field and why.

Body shape: {"error": {"status": 422, "field": "rows[3].step", "message": "..."}}.
5xx bodies never carry internals; the traceback goes to the log. A NUL character in a path or
query is answered here too, before any route: Postgres could not even look it up.
"""

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("curvecast.api")


class ErrorDetail(BaseModel):
    status: int
    field: str | None = Field(description="the field at fault, e.g. rows[3].step; null if none")
    message: str


class ErrorOut(BaseModel):
    """Every error answer (API.md's error model)."""

    error: ErrorDetail


# The errors every route may answer, documented once for the OpenAPI schema (app.py): the
# generated-input test holds the API to it (tests/api/test_schema_fuzz.py).
ERROR_RESPONSES: dict[int | str, dict] = {
    status: {"model": ErrorOut, "description": why} for status, why in (
        (400, "the body is not valid JSON"),
        (401, "no valid API key"),
        (404, "no such run, project, metric or fit (or not visible to this key)"),
        (409, "the request conflicts with the stored state (e.g. a fit not ready yet)"),
        (413, "the body or batch is over its limit"),
        (422, "a field is invalid: the answer names it"),
        (503, "the database is unavailable: nothing was stored, retry later"),
    )
}


class ApiError(Exception):
    status = 400

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class BadRequest(ApiError):
    status = 400


class Unauthorized(ApiError):
    status = 401


class NotFound(ApiError):
    status = 404


class Conflict(ApiError):
    status = 409


class PayloadTooLarge(ApiError):
    status = 413


class Unprocessable(ApiError):
    status = 422


def _body(status: int, message: str, field: str | None) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(
        {"error": {"status": status, "field": field, "message": message}},
        status_code=status,
        headers=headers,
    )


def _loc_to_field(loc: tuple) -> str:
    """('body', 'rows', 3, 'step') -> 'rows[3].step'; query/path params keep their name."""
    parts = [p for p in loc if p not in ("body", "query", "path", "header")]
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "body"


def install_error_handlers(app: FastAPI) -> None:
    @app.middleware("http")
    async def _refuse_nul(request: Request, call_next):
        """A NUL character in the path or a query parameter cannot be stored or even looked up
        in Postgres's text: refused here, for every route at once (bodies: runs.schemas.Body;
        metric names: metrics.validate)."""
        if "\x00" in request.scope["path"]:
            return _body(422, "the path holds a NUL character", "path")
        bad = next((k for k, v in request.query_params.multi_items()
                    if "\x00" in k or "\x00" in v), None)
        if bad is not None:
            return _body(422, "a NUL character cannot be stored or looked up", bad)
        return await call_next(request)

    @app.exception_handler(ApiError)
    async def _api_error(_req: Request, exc: ApiError) -> JSONResponse:
        return _body(exc.status, exc.message, exc.field)

    @app.exception_handler(RequestValidationError)
    async def _validation(_req: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        field = (first.get("ctx") or {}).get("field") or _loc_to_field(tuple(first.get("loc", ())))
        return _body(422, first.get("msg", "invalid"), field)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_req: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _body(exc.status_code, str(exc.detail), None)

    @app.exception_handler(OperationalError)
    async def _database_down(req: Request, exc: OperationalError) -> JSONResponse:
        log.error("database unavailable on %s %s: %s", req.method, req.url.path, exc.orig)
        response = _body(503, "database unavailable; nothing was stored, retry later", None)
        response.headers["Retry-After"] = "1"
        return response

    @app.exception_handler(Exception)
    async def _unexpected(req: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", req.method, req.url.path, exc_info=exc)
        return _body(500, "internal error; the request changed nothing", None)
