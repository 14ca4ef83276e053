"""Annotated dependencies: the request's session, settings, dispatcher and caller."""

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Path, Request
from sqlalchemy.orm import Session

from backend.db import get_sessionmaker
from backend.errors import Unauthorized
from backend.jobs import Dispatcher
from backend.runs.schemas import NAME
from backend.runs.service import Principal, principal_for_key
from backend.settings import Settings


def _settings(request: Request) -> Settings:
    return request.app.state.settings


def _dispatcher(request: Request) -> Dispatcher:
    return request.app.state.dispatcher


def _session(request: Request) -> Iterator[Session]:
    """A session per request; the route commits, anything left uncommitted is rolled back."""
    session = get_sessionmaker(request.app.state.settings.database_url)()
    try:
        yield session
    finally:
        session.close()


SettingsDep = Annotated[Settings, Depends(_settings)]
SessionDep = Annotated[Session, Depends(_session)]
DispatcherDep = Annotated[Dispatcher, Depends(_dispatcher)]


SESSION_COOKIE = "curvecast_key"


def _principal(request: Request, session: SessionDep, settings: SettingsDep) -> Principal:
    """The caller from `Authorization: Bearer <key>`, or the dashboard's HttpOnly cookie."""
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    key = key.strip() if scheme.lower() == "bearer" else ""
    key = key or request.cookies.get(SESSION_COOKIE, "")
    if not key:
        raise Unauthorized("missing API key: send 'Authorization: Bearer <key>'", "authorization")
    principal = principal_for_key(session, key, settings.admin_key)
    if principal is None:
        raise Unauthorized("unknown API key", "authorization")
    return principal


PrincipalDep = Annotated[Principal, Depends(_principal)]

# Row ids in a path, within their column's type (Integer, BigInteger): a larger number is a
# 422, not Postgres's out-of-range error.
RowId = Annotated[int, Path(ge=1, le=2**31 - 1)]
BigRowId = Annotated[int, Path(ge=1, le=2**63 - 1)]
# A project named in a path, as a run names it (RunCreate.project): writes create it.
ProjectPath = Annotated[str, Path(pattern=NAME, description="project name")]
