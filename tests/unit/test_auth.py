"""Bearer tokens: a checked token is remembered, but never past its expiry nor for another
secret."""

from __future__ import annotations

import time

import pytest

from vbank import auth
from vbank.auth import AuthError, Role, issue_token, read_token


def test_a_remembered_token_still_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    now = time.time()
    token = issue_token("alice", Role.CUSTOMER, "s1", ttl_s=60, now=now)
    assert read_token(token, "s1").username == "alice"
    assert (token, "s1") in auth._verified  # the next use skips the signature check
    assert read_token(token, "s1").role is Role.CUSTOMER
    monkeypatch.setattr(auth.time, "time", lambda: now + 61)
    with pytest.raises(AuthError, match="token expired"):
        read_token(token, "s1")
    assert (token, "s1") not in auth._verified


def test_a_remembered_token_is_not_good_for_another_secret_or_when_altered() -> None:
    token = issue_token("bob", Role.TELLER, "s1", ttl_s=60)
    read_token(token, "s1")
    with pytest.raises(AuthError, match="invalid token"):
        read_token(token, "other secret")
    with pytest.raises(AuthError, match="invalid token"):
        read_token(token[:-2] + ("AA" if token[-2:] != "AA" else "BB"), "s1")
