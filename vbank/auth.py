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


def read_token(token: str, secret: str) -> Principal:
    """Check a bearer token's signature and expiry; ``AuthError`` otherwise."""
    try:
        claims = jwt.decode(token, secret, algorithms=["HS256"],
                            options={"require": ["sub", "role", "exp", "jti"]})
        return Principal(str(claims["sub"]), Role(claims["role"]), str(claims["jti"]))
    except jwt.ExpiredSignatureError as exc:
        raise AuthError("token expired") from exc
    except (jwt.InvalidTokenError, ValueError) as exc:
        raise AuthError("invalid token") from exc
