"""Whose address the limits count, against a real ``vbank serve``: a client's own
``X-Forwarded-For`` changes nothing, unless the server was told to trust proxies at the
address it comes from (``VBANK_TRUSTED_PROXIES``)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from vbank.serverproc import ServerProcess, start_server

LIMITS = {"VBANK_WS_PER_ADDRESS": "2", "VBANK_LOGIN_FAILURES_PER_ADDRESS": "3",
          "VBANK_MEDIA_WORKERS": "0"}


@pytest.fixture
def server(tmp_path) -> Iterator[ServerProcess]:  # type: ignore[no-untyped-def]
    proc = start_server(tmp_path / "data", env=LIMITS)
    yield proc
    proc.stop()


@pytest.fixture
def behind_proxy(tmp_path) -> Iterator[ServerProcess]:  # type: ignore[no-untyped-def]
    proc = start_server(tmp_path / "data", env={**LIMITS, "VBANK_TRUSTED_PROXIES": "127.0.0.1"})
    yield proc
    proc.stop()


def forwarded(address: str | None) -> dict[str, str]:
    return {} if address is None else {"X-Forwarded-For": address}


def login(server: ServerProcess, username: str, password: str,
          address: str | None = None) -> int:
    return httpx.post(f"{server.url}/api/v1/auth/login", headers=forwarded(address),
                      json={"username": username, "password": password}).status_code


def fail_logins(server: ServerProcess, address: str | None) -> None:
    """Enough wrong passwords from ``address`` (under other names each) to block it."""
    for name in ("alice", "carol", "tom"):
        assert login(server, name, "guess", address) == 401
    assert login(server, "sam", "guess", address) == 429


async def signed_in(server: ServerProcess, token: str, address: str | None) -> bool:
    """Whether a socket from ``address`` is let in: welcomed, not closed for the limit."""
    url = "ws" + server.url.removeprefix("http") + "/ws"
    ws = await websockets.connect(url, additional_headers=forwarded(address))
    try:
        await ws.send(json.dumps({"type": "auth", "token": token}))
        first = json.loads(await ws.recv())
    except ConnectionClosed as exc:
        assert exc.rcvd is not None and exc.rcvd.code == 1008
        assert "too many connections" in exc.rcvd.reason
        return False
    finally:
        await ws.close()
    assert first["type"] == "welcome"
    return True


async def hold_sockets(server: ServerProcess, address: str | None,
                       n: int) -> list[websockets.ClientConnection]:
    url = "ws" + server.url.removeprefix("http") + "/ws"
    return [await websockets.connect(url, additional_headers=forwarded(address))
            for _ in range(n)]


async def test_a_forged_forwarded_for_does_not_open_more_sockets(
        server: ServerProcess) -> None:
    token = server.login("carol")
    held = await hold_sockets(server, None, 2)
    try:
        assert not await signed_in(server, token, None)
        assert not await signed_in(server, token, "10.9.8.1")
        assert not await signed_in(server, token, "10.9.8.2, 10.9.8.3")
    finally:
        for ws in held:
            await ws.close()


def test_a_forged_forwarded_for_does_not_unblock_a_login_address(
        server: ServerProcess) -> None:
    fail_logins(server, None)
    assert login(server, "bob", "bob") == 429
    assert login(server, "bob", "bob", "10.9.8.4") == 429
    assert login(server, "bob", "bob", "10.9.8.5, 10.9.8.6") == 429


async def test_behind_a_trusted_proxy_each_forwarded_address_has_its_own_sockets(
        behind_proxy: ServerProcess) -> None:
    token = behind_proxy.login("carol")
    held = await hold_sockets(behind_proxy, "10.9.8.1", 2)
    try:
        assert not await signed_in(behind_proxy, token, "10.9.8.1")
        assert await signed_in(behind_proxy, token, "10.9.8.2")
        assert await signed_in(behind_proxy, token, None)  # the proxy's own address
    finally:
        for ws in held:
            await ws.close()


def test_behind_a_trusted_proxy_a_blocked_address_is_the_forwarded_one(
        behind_proxy: ServerProcess) -> None:
    fail_logins(behind_proxy, "10.9.8.4")
    assert login(behind_proxy, "bob", "bob", "10.9.8.4") == 429
    assert login(behind_proxy, "bob", "bob", "10.9.8.5") == 200
    assert login(behind_proxy, "bob", "bob") == 200
