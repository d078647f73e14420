"""Typed dependencies shared by the routers: the branch, the database, who is calling."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection

from vbank.auth import AuthError, Principal, Role, read_token
from vbank.branch import Branch
from vbank.config import Settings

_bearer = HTTPBearer(auto_error=False)


# ``async``, though they never wait: FastAPI runs a plain ``def`` dependency in its thread
# pool, a hop that costs more than the request's own work on small endpoints.
async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_branch(request: Request) -> Branch:
    return request.app.state.branch


async def get_db(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.sessions() as db:
        yield db


def problem(description: str) -> dict[str, Any]:
    """An error response for a route's ``responses``: ``{"detail": ...}`` and what it means."""
    return {"description": description, "model": Problem}


class Problem(BaseModel):
    """Every error's body: FastAPI's ``detail``, a sentence (a list for 422 validation)."""

    detail: str | list[Any]


def too_many(detail: str, wait_s: float) -> HTTPException:
    """429 with how long to wait (whole seconds, at least one)."""
    return HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, detail,
                         headers={"Retry-After": str(max(1, math.ceil(wait_s)))})


def client_address(connection: HTTPConnection) -> str:
    """The peer's address as the server sees it (no proxy headers are trusted)."""
    return connection.client.host if connection.client is not None else "unknown"


def unauthorized(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail,
                         headers={"WWW-Authenticate": "Bearer"})


async def get_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise unauthorized("missing bearer token")
    try:
        principal = read_token(credentials.credentials, request.app.state.settings.secret)
        # the token's word is not enough: its user and login must still stand
        await request.app.state.standings.check(principal)
    except AuthError as exc:
        raise unauthorized(str(exc)) from exc
    return principal


def require(*roles: Role) -> Callable[..., Any]:
    """A dependency admitting only the given roles (403 for the others)."""

    async def check(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        if principal.role not in roles:
            raise HTTPException(status.HTTP_403_FORBIDDEN,
                                f"this needs the role {' or '.join(r.value for r in roles)}")
        return principal

    return check


SettingsDep = Annotated[Settings, Depends(get_settings)]
BranchDep = Annotated[Branch, Depends(get_branch)]
DbDep = Annotated[AsyncSession, Depends(get_db)]
CurrentUser = Annotated[Principal, Depends(get_principal)]
CurrentCustomer = Annotated[Principal, Depends(require(Role.CUSTOMER))]
