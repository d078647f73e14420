"""Passwords (argon2) and short-lived bearer tokens (HMAC-signed JWT).

A token stands for a *login*: its ``sid`` claim names the login, the same in every token that
refreshing gives, and ``auth_time`` says when the password was checked. What the token says
is believed only while the database agrees (``check_standing``): the user still exists with
the same role, the login was not signed out, nor all the user's logins by an administrator,
and it is younger than the longest a login may last.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, replace
from enum import StrEnum

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from vbank import VbankError

_hasher = PasswordHasher()
#: a hash checked when the user does not exist, so a wrong name costs the same time
_DUMMY_HASH = _hasher.hash("not a real password")


class Role(StrEnum):
    CUSTOMER = "customer"
    TELLER = "teller"
    SUPERVISOR = "supervisor"
    AUDITOR = "auditor"
    ADMIN = "admin"


class AuthError(VbankError):
    """Credentials or a token that are not accepted; the message is safe to show."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling, as their token says."""

    username: str
    role: Role
    token_id: str  # jti: this token
    login_id: str  # sid: the login, shared by the tokens refreshing gives
    auth_time: float  # when the login's password was checked (seconds since the epoch)
    issued_at: float
    expires_at: float


@dataclass(frozen=True, slots=True)
class Standing:
    """What the database says now of a token's user and login."""

    role: str | None  # None: no such user
    #: logins from before this (seconds since the epoch) were signed out by an administrator
    signed_out_at: float | None = None
    login_revoked: bool = False  # this login was signed out


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def new_login(username: str, role: Role, ttl_s: int, max_login_s: int | None = None,
              now: float | None = None) -> Principal:
    """The first token of a login whose password was just checked."""
    issued = now if now is not None else time.time()
    return _within_login(Principal(username, role, uuid.uuid4().hex, uuid.uuid4().hex,
                                   issued, issued, issued + ttl_s), max_login_s)


def renew(principal: Principal, ttl_s: int, max_login_s: int,
          now: float | None = None) -> Principal:
    """The next token of the same login: same ``sid`` and ``auth_time``, never past the
    login's end (``AuthError`` once it is over)."""
    issued = now if now is not None else time.time()
    check_login_age(principal, max_login_s, issued)
    return _within_login(replace(principal, token_id=uuid.uuid4().hex, issued_at=issued,
                                 expires_at=issued + ttl_s), max_login_s)


def _within_login(principal: Principal, max_login_s: int | None) -> Principal:
    if max_login_s is None:
        return principal
    return replace(principal, expires_at=min(principal.expires_at,
                                             principal.auth_time + max_login_s))


def sign(principal: Principal, secret: str) -> str:
    claims = {"sub": principal.username, "role": principal.role.value,
              "iat": int(principal.issued_at), "exp": int(principal.expires_at),
              "jti": principal.token_id, "sid": principal.login_id,
              "auth_time": principal.auth_time}
    return jwt.encode(claims, secret, algorithm="HS256")


def issue_token(username: str, role: Role, secret: str, ttl_s: int,
                now: float | None = None) -> str:
    """A token of a new login (no limit on the login's life: for tests and tools)."""
    return sign(new_login(username, role, ttl_s, now=now), secret)


#: tokens whose signature was checked: (token, secret) → who. Checking an HMAC signature and
#: parsing the claims is a good part of a small request's cost; the expiry is still checked
#: on every use. Bounded: emptied when full.
_verified: dict[tuple[str, str], Principal] = {}
VERIFIED_MAX = 4096


def read_token(token: str, secret: str) -> Principal:
    """Check a bearer token's signature and expiry; ``AuthError`` otherwise. Whether its
    login still stands is ``check_standing``'s question."""
    known = _verified.get((token, secret))
    if known is not None:
        if time.time() < known.expires_at:
            return known
        del _verified[(token, secret)]
        raise AuthError("token expired")
    try:
        claims = jwt.decode(token, secret, algorithms=["HS256"], options={
            "require": ["sub", "role", "iat", "exp", "jti", "sid", "auth_time"]})
        principal = Principal(str(claims["sub"]), Role(claims["role"]), str(claims["jti"]),
                              str(claims["sid"]), float(claims["auth_time"]),
                              float(claims["iat"]), float(claims["exp"]))
    except jwt.ExpiredSignatureError as exc:
        raise AuthError("token expired") from exc
    except (jwt.InvalidTokenError, ValueError, TypeError) as exc:
        raise AuthError("invalid token") from exc
    if len(_verified) >= VERIFIED_MAX:
        _verified.clear()
    _verified[(token, secret)] = principal
    return principal


def check_login_age(principal: Principal, max_login_s: int, now: float) -> None:
    if now - principal.auth_time > max_login_s:
        raise AuthError(f"a login lasts at most {max_login_s} s: log in again")


def check_standing(principal: Principal, standing: Standing, max_login_s: int,
                   now: float | None = None) -> None:
    """``AuthError`` unless the token's login still stands (see the module's docstring)."""
    if standing.role is None:
        raise AuthError("user no longer exists")
    if standing.login_revoked:
        raise AuthError("signed out: log in again")
    if standing.signed_out_at is not None and principal.auth_time < standing.signed_out_at:
        raise AuthError("signed out by an administrator: log in again")
    if standing.role != principal.role.value:
        raise AuthError("your role has changed: log in again")
    check_login_age(principal, max_login_s, now if now is not None else time.time())
