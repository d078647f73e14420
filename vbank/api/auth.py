"""``/api/v1/auth``: exchange a username and password for a short-lived bearer token."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from vbank.api.deps import (
    CurrentUser,
    DbDep,
    SettingsDep,
    client_address,
    problem,
    too_many,
    unauthorized,
)
from vbank.auth import Role, issue_token, verify_password
from vbank.limits import Limits
from vbank.store import repo

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


class LoginCreate(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class TokenPublic(BaseModel):
    access_token: str
    token_type: str = "bearer"
    role: Role
    expires_in: int
    username: str


@router.post("/login", response_model=TokenPublic,
             responses={401: problem("wrong username or password"),
                        429: {"description": "too many attempts: wait Retry-After seconds"}})
async def login(body: LoginCreate, db: DbDep, settings: SettingsDep,
                request: Request) -> TokenPublic:
    limits: Limits = request.app.state.limits
    address = client_address(request)
    wait = await limits.login_wait(body.username, address)
    if wait is not None:
        raise too_many("too many login attempts; try again later", wait)
    user = await repo.get_user(db, body.username)
    # argon2 is deliberately slow (tens of ms): never on the event loop that carries calls
    ok = await asyncio.to_thread(verify_password, user.password_hash if user else None,
                                 body.password)
    if not ok or user is None:
        await limits.login_failed(body.username, address)
        raise unauthorized("wrong username or password")
    role = Role(user.role)
    return TokenPublic(access_token=issue_token(user.username, role, settings.secret,
                                                settings.token_ttl_s),
                       role=role, expires_in=settings.token_ttl_s, username=user.username)


@router.post("/refresh", response_model=TokenPublic)
async def refresh(principal: CurrentUser, db: DbDep, settings: SettingsDep) -> TokenPublic:
    """A fresh token for a still-valid one, so a long shift needs no second login."""
    user = await repo.get_user(db, principal.username)
    if user is None:
        raise unauthorized("user no longer exists")
    role = Role(user.role)
    return TokenPublic(access_token=issue_token(user.username, role, settings.secret,
                                                settings.token_ttl_s),
                       role=role, expires_in=settings.token_ttl_s, username=user.username)
