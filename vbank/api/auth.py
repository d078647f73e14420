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
    # counted as a wrong password before it is checked: attempts sent together must not all
    # be checked against the count that was there before any of them
    attempt = await limits.login_attempt(body.username, client_address(request))
    if attempt.wait is not None:
        raise too_many("too many login attempts; try again later", attempt.wait)
    wrong = False
    try:
        user = await repo.get_user(db, body.username)
        # argon2 is deliberately slow (tens of ms): never on the event loop that carries calls
        ok = await asyncio.to_thread(verify_password, user.password_hash if user else None,
                                     body.password)
        wrong = not ok or user is None
    finally:
        if not wrong:  # right, or never checked (the database failed): not a wrong password
            await limits.login_succeeded(attempt)
    if wrong or user is None:
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
