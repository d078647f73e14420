"""Passwords (argon2) and short-lived bearer tokens (HMAC-signed JWT)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
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
    """Who is calling, as proven by their token."""

    username: str
    role: Role
    token_id: str


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def issue_token(username: str, role: Role, secret: str, ttl_s: int,
                now: float | None = None) -> str:
    issued = int(now if now is not None else time.time())
    claims = {"sub": username, "role": role.value, "iat": issued, "exp": issued + ttl_s,
              "jti": uuid.uuid4().hex}
    return jwt.encode(claims, secret, algorithm="HS256")


#: tokens whose signature was checked: (token, secret) → (who, expiry). Checking an HMAC
#: signature and parsing the claims is a good part of a small request's cost; the expiry is
#: still checked on every use. Bounded: emptied when full.
_verified: dict[tuple[str, str], tuple[Principal, float]] = {}
VERIFIED_MAX = 4096


def read_token(token: str, secret: str) -> Principal:
    """Check a bearer token's signature and expiry; ``AuthError`` otherwise."""
    known = _verified.get((token, secret))
    if known is not None:
        if time.time() < known[1]:
            return known[0]
        del _verified[(token, secret)]
        raise AuthError("token expired")
    try:
        claims = jwt.decode(token, secret, algorithms=["HS256"],
                            options={"require": ["sub", "role", "exp", "jti"]})
        principal = Principal(str(claims["sub"]), Role(claims["role"]), str(claims["jti"]))
        expires = float(claims["exp"])
    except jwt.ExpiredSignatureError as exc:
        raise AuthError("token expired") from exc
    except (jwt.InvalidTokenError, ValueError, TypeError) as exc:
        raise AuthError("invalid token") from exc
    if len(_verified) >= VERIFIED_MAX:
        _verified.clear()
    _verified[(token, secret)] = (principal, expires)
    return principal
