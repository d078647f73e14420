"""Bearer tokens: a checked token is remembered, but never past its expiry nor for another
secret; a token stands only while its user and login do, and a login has a maximum life."""

from __future__ import annotations

import time

import pytest

from vbank import auth
from vbank.api.standing import Standings
from vbank.auth import (
    AuthError,
    Role,
    Standing,
    check_standing,
    issue_token,
    new_login,
    read_token,
    renew,
    sign,
)

#: a signing key as long as the server demands (PyJWT warns of shorter ones)
SECRET = "k" * 32


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


def test_a_renewed_token_keeps_its_login_and_ends_with_it() -> None:
    t = float(int(time.time()))
    first = new_login("tina", Role.TELLER, ttl_s=1800, max_login_s=3600, now=t - 2000)
    assert first.auth_time == first.issued_at == t - 2000 and first.expires_at == t - 200
    later = renew(first, ttl_s=1800, max_login_s=3600, now=t)
    assert (later.login_id, later.auth_time) == (first.login_id, first.auth_time)
    assert later.token_id != first.token_id and later.expires_at == t + 1600  # not t + 1800
    with pytest.raises(AuthError, match="a login lasts at most 3600 s: log in again"):
        renew(later, ttl_s=1800, max_login_s=3600, now=t + 1601)
    read = read_token(sign(later, SECRET), SECRET)
    assert (read.login_id, read.auth_time, read.expires_at) == \
        (later.login_id, t - 2000, t + 1600)


@pytest.mark.parametrize(("standing", "refusal"), [
    (Standing(role=None), "user no longer exists"),
    (Standing(role="customer"), "your role has changed: log in again"),
    (Standing(role="teller", login_revoked=True), "signed out: log in again"),
    (Standing(role="teller", signed_out_at=1000.5),
     "signed out by an administrator: log in again"),
])
def test_a_token_stands_only_while_its_user_and_login_do(standing: Standing,
                                                         refusal: str) -> None:
    principal = new_login("tina", Role.TELLER, ttl_s=1800, now=1000.0)
    with pytest.raises(AuthError, match=refusal):
        check_standing(principal, standing, max_login_s=3600, now=1001.0)


def test_a_login_signed_out_before_it_began_or_young_enough_stands() -> None:
    principal = new_login("tina", Role.TELLER, ttl_s=1800, now=1000.0)
    check_standing(principal, Standing(role="teller", signed_out_at=999.0), 3600, now=4600.0)
    with pytest.raises(AuthError, match="a login lasts at most 3600 s"):
        check_standing(principal, Standing(role="teller"), 3600, now=4600.5)


async def test_standings_are_read_again_after_the_cache_time_or_when_forgotten() -> None:
    said = {"role": "teller"}
    reads: list[tuple[str, str]] = []
    now = [0.0]

    async def load(username: str, login_id: str) -> Standing:
        reads.append((username, login_id))
        return Standing(role=said["role"])

    standings = Standings(load, cache_s=5, max_login_s=43200, clock=lambda: now[0])
    principal = new_login("tina", Role.TELLER, ttl_s=1800)
    await standings.check(principal)
    said["role"] = "customer"  # demoted in the database
    now[0] = 4.9
    await standings.check(principal)  # still believed within the cache time
    assert len(reads) == 1
    now[0] = 5.0
    with pytest.raises(AuthError, match="your role has changed"):
        await standings.check(principal)
    said["role"] = "teller"  # promoted back: the refusal is remembered as long
    with pytest.raises(AuthError, match="your role has changed"):
        await standings.check(principal)
    standings.forget("tina")  # changed on this node: read at once
    await standings.check(principal)
    assert len(reads) == 3
