"""Bearer tokens stand for a login that still stands, against a real ``vbank serve``: a
demoted or deleted user, a signed-out login and one signed out by an administrator lose
access on HTTP and on the WebSocket; a login lasts at most ``VBANK_LOGIN_MAX_S``. The store's
side on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import replace
from typing import Any

import httpx
import jwt
import pytest
import websockets
from sqlalchemy import select
from websockets.exceptions import ConnectionClosed

from vbank.auth import AuthError, Role, Standing, check_standing, new_login
from vbank.config import DEMO_SECRET
from vbank.serverproc import ServerProcess, start_server
from vbank.store import logins, repo
from vbank.store.db import make_engine, sessionmaker
from vbank.store.models import RevokedLogin

CACHE_S = 1.0
LOGIN_MAX_S = 60
ENV = {"VBANK_AUTH_CACHE_S": str(CACHE_S), "VBANK_LOGIN_MAX_S": str(LOGIN_MAX_S),
       "VBANK_MEDIA_WORKERS": "0"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = start_server(tmp_path_factory.mktemp("tokens") / "data", env=ENV)
    yield proc
    proc.stop()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def add_user(server: ServerProcess, role: str) -> str:
    """A user of the test's own (the demo users are shared by the module's tests)."""
    name = f"{role}-{uuid.uuid4().hex[:8]}"
    body: dict[str, Any] = {"username": name, "password": f"{name}-pw", "role": role}
    r = httpx.post(f"{server.url}/api/v1/admin/users", json=body,
                   headers=bearer(server.login("admin")))
    assert r.status_code == 201, r.text
    return name


def login(server: ServerProcess, name: str) -> str:
    return server.login(name, f"{name}-pw")


def mint(**claims: Any) -> str:
    """A token signed with the demo key, as anyone who read the source can make one."""
    now = time.time()
    return jwt.encode({"iat": int(now), "exp": int(now) + 600, "jti": uuid.uuid4().hex,
                       "sid": uuid.uuid4().hex, "auth_time": now, **claims},
                      DEMO_SECRET, algorithm="HS256")


async def eventually(check: Callable[[], Awaitable[bool]], within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while not await check():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.2)
    return True


async def ws_refusal(server: ServerProcess, token: str) -> str | None:
    """Sign in on the socket: the 1008 close reason, or None when welcomed."""
    async with websockets.connect("ws" + server.url.removeprefix("http") + "/ws") as ws:
        await ws.send(json.dumps({"type": "auth", "token": token}))
        try:
            first = json.loads(await ws.recv())
        except ConnectionClosed as exc:
            assert exc.rcvd is not None and exc.rcvd.code == 1008
            return exc.rcvd.reason
        assert first["type"] == "welcome"
        return None


@pytest.fixture
async def http(server: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"{server.url}/api/v1") as client:
        yield client


async def test_a_demoted_teller_loses_the_queues_and_the_socket(
        server: ServerProcess, http: httpx.AsyncClient) -> None:
    name = add_user(server, "teller")
    token = login(server, name)
    assert (await http.get("/queues", headers=bearer(token))).status_code == 200
    ws = await websockets.connect("ws" + server.url.removeprefix("http") + "/ws")
    await ws.send(json.dumps({"type": "auth", "token": token}))
    assert json.loads(await ws.recv())["type"] == "welcome"

    with sqlite3.connect(server.data / "vbank.db") as db:  # as an operator would
        db.execute("UPDATE users SET role = 'customer' WHERE username = ?", (name,))

    async def refused() -> bool:
        r = await http.get("/queues", headers=bearer(token))
        return r.status_code == 401 and r.json()["detail"] == "your role has changed: " \
                                                             "log in again"
    assert await eventually(refused, within_s=CACHE_S + 3)
    with pytest.raises(ConnectionClosed) as closed:  # the open socket too
        async with asyncio.timeout(CACHE_S + 5):
            while True:
                await ws.recv()  # queue updates, until the close
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    assert closed.value.rcvd.reason == "your role has changed: log in again"


async def test_a_deleted_user_loses_access(server: ServerProcess,
                                           http: httpx.AsyncClient) -> None:
    name = add_user(server, "customer")
    token = login(server, name)
    with sqlite3.connect(server.data / "vbank.db") as db:
        db.execute("DELETE FROM users WHERE username = ?", (name,))

    async def refused() -> bool:
        r = await http.get("/services", headers=bearer(token))
        return r.status_code == 401 and r.json()["detail"] == "user no longer exists"
    assert await eventually(refused, within_s=CACHE_S + 3)
    assert await ws_refusal(server, token) == "user no longer exists"


async def test_a_token_for_a_user_who_does_not_exist_is_refused(
        server: ServerProcess, http: httpx.AsyncClient) -> None:
    ghost = mint(sub="ghost", role="admin")
    r = await http.get("/admin/branch", headers=bearer(ghost))
    assert r.status_code == 401 and r.json()["detail"] == "user no longer exists"
    assert await ws_refusal(server, ghost) == "user no longer exists"
    real = mint(sub="admin", role="admin")  # the same made-up login for a real admin
    assert (await http.get("/admin/branch", headers=bearer(real))).status_code == 200


async def test_logout_refuses_the_token_on_http_and_on_the_socket(
        server: ServerProcess, http: httpx.AsyncClient) -> None:
    name = add_user(server, "customer")
    token, other = login(server, name), login(server, name)
    refreshed = await http.post("/auth/refresh", headers=bearer(token))
    assert refreshed.status_code == 200

    r = await http.post("/auth/logout", headers=bearer(token))
    assert r.status_code == 204, r.text

    for signed_out in (token, refreshed.json()["access_token"]):  # every token of the login
        r = await http.get("/services", headers=bearer(signed_out))
        assert r.status_code == 401 and r.json()["detail"] == "signed out: log in again"
        assert await ws_refusal(server, signed_out) == "signed out: log in again"
    assert (await http.post("/auth/refresh", headers=bearer(token))).status_code == 401
    # another login of the same user is not signed out
    assert (await http.get("/services", headers=bearer(other))).status_code == 200
    assert await ws_refusal(server, other) is None


async def test_an_admin_signs_a_user_out_everywhere(server: ServerProcess,
                                                    http: httpx.AsyncClient) -> None:
    name = add_user(server, "teller")
    tokens = [login(server, name), login(server, name)]
    admin = bearer(server.login("admin"))
    path = f"/admin/users/{name}/logins"
    assert (await http.delete(path, headers=bearer(tokens[0]))).status_code == 403
    assert (await http.delete(f"/admin/users/nobody-{name}/logins",
                              headers=admin)).status_code == 404

    r = await http.delete(path, headers=admin)
    assert r.status_code == 200 and r.json()["username"] == name

    for token in tokens:
        r = await http.get("/queues", headers=bearer(token))
        assert r.status_code == 401
        assert r.json()["detail"] == "signed out by an administrator: log in again"
        assert await ws_refusal(server, token) == "signed out by an administrator: " \
                                                  "log in again"
    fresh = login(server, name)  # a new login is not affected
    assert (await http.get("/queues", headers=bearer(fresh))).status_code == 200


def test_refresh_keeps_the_login_time_and_never_passes_the_maximum(
        server: ServerProcess) -> None:
    token = server.login("bob")
    first = jwt.decode(token, DEMO_SECRET, algorithms=["HS256"])
    assert first["exp"] <= first["auth_time"] + LOGIN_MAX_S  # the token ends with the login
    r = httpx.post(f"{server.url}/api/v1/auth/refresh", headers=bearer(token))
    assert r.status_code == 200
    renewed = jwt.decode(r.json()["access_token"], DEMO_SECRET, algorithms=["HS256"])
    assert (renewed["sid"], renewed["auth_time"]) == (first["sid"], first["auth_time"])
    assert renewed["jti"] != first["jti"] and renewed["exp"] <= first["auth_time"] + LOGIN_MAX_S
    assert r.json()["expires_in"] <= LOGIN_MAX_S

    # a token of a login older than the maximum, still within its own expiry (stolen, kept
    # alive by refreshing): refused, and cannot be refreshed
    old = mint(sub="bob", role="customer", auth_time=time.time() - LOGIN_MAX_S - 1)
    r = httpx.post(f"{server.url}/api/v1/auth/refresh", headers=bearer(old))
    assert r.status_code == 401
    assert r.json()["detail"] == f"a login lasts at most {LOGIN_MAX_S} s: log in again"
    assert httpx.get(f"{server.url}/api/v1/services", headers=bearer(old)).status_code == 401



async def test_logins_are_signed_out_in_the_database(database: str) -> None:
    engine = make_engine(database)
    try:
        async with sessionmaker(engine)() as db:
            await repo.add_user(db, "tina", "not a hash", "teller")
            await db.commit()
            login = new_login("tina", Role.TELLER, ttl_s=1800)
            assert await logins.standing(db, "tina", login.login_id) == Standing(role="teller")
            assert await logins.standing(db, "ghost", login.login_id) == Standing(role=None)

            ended = replace(new_login("tina", Role.TELLER, ttl_s=1800),
                            auth_time=time.time() - 7200)  # a login over an hour ago
            await logins.sign_out(db, ended, max_login_s=3600)
            await db.commit()
            for _ in range(2):  # twice: once
                await logins.sign_out(db, login, max_login_s=3600)
                await db.commit()
            standing = await logins.standing(db, "tina", login.login_id)
            assert standing.login_revoked
            kept = (await db.execute(select(RevokedLogin.login_id))).scalars().all()
            assert kept == [login.login_id]  # the ended login's row was dropped

            at = await logins.sign_out_everywhere(db, "tina")
            await db.commit()
            assert at is not None and await logins.sign_out_everywhere(db, "ghost") is None
            standing = await logins.standing(db, "tina", "another login")
            assert standing.signed_out_at == pytest.approx(at.timestamp(), abs=1e-3)
            with pytest.raises(AuthError, match="signed out by an administrator"):
                check_standing(login, standing, max_login_s=3600)
            check_standing(new_login("tina", Role.TELLER, ttl_s=1800), standing, 3600)
    finally:
        await engine.dispose()
