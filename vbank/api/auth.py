"""``/api/v1/auth``: exchange a username and password for a short-lived bearer token, keep
it fresh within the login's maximum life, sign the login out."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request, Response, status
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
from vbank.api.standing import Standings
from vbank.auth import AuthError, Principal, Role, new_login, renew, sign, verify_password
from vbank.config import Settings
from vbank.limits import Limits
from vbank.store import logins, repo

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
    return _token(new_login(user.username, Role(user.role), settings.token_ttl_s,
                            settings.login_max_s), settings)


@router.post("/refresh", response_model=TokenPublic,
             responses={401: problem("no valid token, or the login is over: log in again")})
async def refresh(principal: CurrentUser, settings: SettingsDep) -> TokenPublic:
    """A fresh token of the same login, so a long shift needs no second login; never past
    ``VBANK_LOGIN_MAX_S`` after the password was checked."""
    try:
        return _token(renew(principal, settings.token_ttl_s, settings.login_max_s), settings)
    except AuthError as exc:
        raise unauthorized(str(exc)) from exc


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT,
             responses={401: problem("no valid token")})
async def logout(principal: CurrentUser, db: DbDep, settings: SettingsDep,
                 request: Request) -> Response:
    """Sign out the token's login: this token and every other that refreshing gave."""
    await logins.sign_out(db, principal, settings.login_max_s)
    await db.commit()
    standings: Standings = request.app.state.standings
    standings.forget(principal.username)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _token(principal: Principal, settings: Settings) -> TokenPublic:
    return TokenPublic(access_token=sign(principal, settings.secret), role=principal.role,
                       expires_in=int(principal.expires_at - principal.issued_at),
                       username=principal.username)
