"""The branch's limits against a real ``vbank serve`` with small settings: wrong passwords,
redemptions, pages from other origins and too many sockets from one address."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from vbank.serverproc import ServerProcess, start_server

LIMITS = {"VBANK_LOGIN_FAILURES_PER_USER": "3", "VBANK_REDEMPTIONS_PER_MINUTE": "4",
          "VBANK_WS_PER_ADDRESS": "3", "VBANK_WS_ORIGINS": "https://branch.example.com"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = start_server(tmp_path_factory.mktemp("limits") / "data", env=LIMITS)
    yield proc
    proc.stop()


def login(server: ServerProcess, username: str, password: str) -> httpx.Response:
    return httpx.post(f"{server.url}/api/v1/auth/login",
                      json={"username": username, "password": password})


def test_wrong_passwords_lock_the_name_for_a_while_and_say_how_long(
        server: ServerProcess) -> None:
    assert login(server, "bob", "bob").status_code == 200  # a right one does not count
    for _ in range(3):
        assert login(server, "bob", "guess").status_code == 401
    locked = login(server, "bob", "bob")  # even the right password now waits
    assert locked.status_code == 429
    assert 1 <= int(locked.headers["Retry-After"]) <= 300
    assert "too many login attempts" in locked.json()["detail"]
    assert login(server, "carol", "carol").status_code == 200  # others are not locked out


def test_redemptions_past_the_rate_are_429_and_a_retry_later_with_the_key_is_safe(
        server: ServerProcess) -> None:
    token = server.login("alice")
    headers = {"Authorization": f"Bearer {token}"}
    items = httpx.get(f"{server.url}/api/v1/mall/items", headers=headers).json()
    item = min((i for i in items if i["stock"] > 0), key=lambda i: i["price"])
    answers = []
    for _ in range(6):
        r = httpx.post(f"{server.url}/api/v1/mall/redemptions", headers={
            **headers, "Idempotency-Key": str(uuid.uuid4())},
            json={"item_id": item["id"], "quantity": 1})
        answers.append(r.status_code)
        if r.status_code == 429:
            assert int(r.headers["Retry-After"]) >= 1
    assert answers[4:] == [429, 429]
    assert all(code != 429 for code in answers[:4])


async def socket_open(server: ServerProcess, origin: str | None) -> str | None:
    """Open the signaling socket and sign in; the close reason if the branch refused."""
    url = "ws" + server.url.removeprefix("http") + "/ws"
    token = server.login("carol")
    ws = await websockets.connect(url, origin=origin)  # type: ignore[arg-type]
    try:
        await ws.send(json.dumps({"type": "auth", "token": token}))
        first = json.loads(await ws.recv())
    except ConnectionClosed as exc:
        return exc.rcvd.reason if exc.rcvd else "closed"
    finally:
        await ws.close()
    assert first["type"] == "welcome"
    return None


async def test_pages_from_other_origins_cannot_open_the_socket(server: ServerProcess) -> None:
    assert await socket_open(server, None) is None  # not a browser
    assert await socket_open(server, server.url) is None  # the branch's own pages
    assert await socket_open(server, "https://branch.example.com") is None  # listed
    refused = await socket_open(server, "https://evil.example.net")
    assert refused is not None and "origin" in refused


async def test_one_address_may_hold_only_so_many_sockets(server: ServerProcess) -> None:
    url = "ws" + server.url.removeprefix("http") + "/ws"
    held = [await websockets.connect(url) for _ in range(3)]
    try:
        extra = await websockets.connect(url)
        with pytest.raises(ConnectionClosed) as closed:
            await extra.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
        assert "too many connections" in closed.value.rcvd.reason
        await held.pop().close()
        again = await websockets.connect(url)  # one closed, one may come
        await again.send(json.dumps({"type": "auth", "token": server.login("tom")}))
        assert json.loads(await again.recv())["type"] == "welcome"
        await again.close()
    finally:
        for ws in held:
            await ws.close()


def test_the_limits_are_in_the_openapi_document(server: ServerProcess) -> None:
    spec = httpx.get(f"{server.url}/openapi.json").json()
    assert "429" in spec["paths"]["/api/v1/auth/login"]["post"]["responses"]
    assert "429" in spec["paths"]["/api/v1/mall/redemptions"]["post"]["responses"]
