"""Races for the mall's stock over HTTP, on real server processes, on SQLite and PostgreSQL.

Many customers redeeming the last items at once, one key sent many times at once, and a
server killed with ``SIGKILL`` in the middle of a sale then retried key by key: stock is
never oversold, nobody is debited twice, and the books balance afterwards.
"""

from __future__ import annotations

import asyncio
import json
import signal
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from vbank.bench.mall import consistency, postgres_database, postgres_unreachable
from vbank.serverproc import ServerProcess, start_server

PRICE = 10
START_POINTS = 500  # under the silver tier's growth: every racer pays the list price
PASSWORD = "racer-password"
ENV = {"VBANK_MEDIA_WORKERS": "0"}  # no calls here: spare the cores for the race


@dataclass
class Branch:
    """The server under test, on a database that outlives it."""

    data: Path
    db_url: str | None  # None: SQLite under ``data``
    server: ServerProcess

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def database(self) -> str:
        return self.db_url or f"sqlite:///{self.data / 'vbank.db'}"

    @classmethod
    def open(cls, data: Path, db_url: str | None) -> Branch:
        return cls(data, db_url, start_server(data, *_db_option(db_url), env=ENV))

    def restart(self) -> None:
        """A new server on the same data and database."""
        self.server = start_server(self.data, *_db_option(self.db_url), env=ENV)


def _db_option(db_url: str | None) -> list[str]:
    return ["--db", db_url] if db_url else []


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def branch(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Branch]:
    data = tmp_path_factory.mktemp(f"race-{request.param}")
    if request.param == "sqlite":
        yield from _serve(data, None)
        return
    why = postgres_unreachable()
    if why is not None:
        pytest.skip(why)
    with postgres_database("vbank_race") as url:  # fresh for this module, dropped after
        yield from _serve(data, url)


def _serve(data: Path, db_url: str | None) -> Iterator[Branch]:
    branch = Branch.open(data, db_url)
    try:
        yield branch
    finally:
        branch.server.stop()


# --------------------------------------------------------------------------- helpers
def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def login(http: httpx.AsyncClient, name: str, password: str) -> str:
    r = await http.post("/api/v1/auth/login", json={"username": name, "password": password})
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


async def open_sale(http: httpx.AsyncClient, stock: int, customers: int) -> tuple[
        str, str, dict[str, str]]:
    """A fresh item and fresh customers; the item's id, the admin's token, their tokens."""
    admin = await login(http, "admin", "admin")
    item = f"race-{uuid.uuid4().hex[:8]}"
    r = await http.post("/api/v1/admin/mall/items", headers=bearer(admin), json={
        "id": item, "name": "Last teapot", "points": PRICE, "stock": stock})
    assert r.status_code == 201, r.text
    names = [f"{item}-c{i}" for i in range(customers)]

    async def customer(name: str) -> str:
        r = await http.post("/api/v1/admin/users", headers=bearer(admin), json={
            "username": name, "password": PASSWORD, "role": "customer",
            "points": START_POINTS})
        assert r.status_code == 201, r.text
        return await login(http, name, PASSWORD)

    tokens = await asyncio.gather(*(customer(n) for n in names))
    return item, admin, dict(zip(names, tokens, strict=True))


async def redeem(http: httpx.AsyncClient, token: str, item: str, key: str,
                 quantity: int = 1) -> httpx.Response:
    return await http.post("/api/v1/mall/redemptions", headers={
        **bearer(token), "Idempotency-Key": key}, json={"item_id": item, "quantity": quantity})


async def stock_of(http: httpx.AsyncClient, admin: str, item: str) -> int:
    r = await http.get("/api/v1/mall/items", headers=bearer(admin))
    return int(next(i["stock"] for i in r.json() if i["id"] == item))


async def books_of(http: httpx.AsyncClient, token: str, item: str) -> tuple[int, list[Any]]:
    """A customer's balance and placed orders of ``item``."""
    balance = (await http.get("/api/v1/points", headers=bearer(token))).json()["balance"]
    orders = [o for o in (await http.get("/api/v1/mall/redemptions",
                                         headers=bearer(token))).json()
              if o["item_id"] == item and o["status"] == "placed"]
    return int(balance), orders


async def assert_consistent(http: httpx.AsyncClient, admin: str) -> None:
    r = await http.get("/api/v1/admin/points/consistency", headers=bearer(admin))
    assert r.status_code == 200, r.text
    assert r.json()["problems"] == []


def client(branch: Branch) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=branch.url, timeout=30, limits=httpx.Limits(
        max_connections=200, max_keepalive_connections=200))


# --------------------------------------------------------------------------- the races
async def test_simultaneous_redemptions_sell_exactly_the_stock(branch: Branch) -> None:
    stock, requests = 25, 60
    async with client(branch) as http:
        item, admin, tokens = await open_sale(http, stock, customers=12)
        names = list(tokens)
        who = [names[i % len(names)] for i in range(requests)]
        answers = await asyncio.gather(*(redeem(http, tokens[name], item, f"{item}-{i}")
                                         for i, name in enumerate(who)))

        statuses = Counter(r.status_code for r in answers)
        assert statuses == {201: min(stock, requests), 409: requests - stock}, statuses
        assert all(r.json()["detail"] == f"{item} is out of stock"
                   for r in answers if r.status_code == 409)
        assert await stock_of(http, admin, item) == 0
        won = Counter(name for name, r in zip(who, answers, strict=True)
                      if r.status_code == 201)
        for name, token in tokens.items():
            balance, orders = await books_of(http, token, item)
            assert len(orders) == won[name]
            assert balance == START_POINTS - PRICE * won[name], name  # losers: untouched
        assert len({r.json()["order_id"] for r in answers if r.status_code == 201}) == stock
        await assert_consistent(http, admin)


async def test_one_key_sent_ten_times_at_once_buys_once(branch: Branch) -> None:
    async with client(branch) as http:
        item, admin, tokens = await open_sale(http, stock=5, customers=1)
        token = next(iter(tokens.values()))
        key = f"{item}-once"
        answers = await asyncio.gather(*(redeem(http, token, item, key) for _ in range(10)))

        assert {r.status_code for r in answers} == {201}
        assert len({r.json()["order_id"] for r in answers}) == 1
        assert sorted(r.json()["points_spent"] for r in answers) == [0] * 9 + [PRICE]
        assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in answers) == 9
        balance, orders = await books_of(http, token, item)
        assert balance == START_POINTS - PRICE
        assert [o["id"] for o in orders] == [answers[0].json()["order_id"]]
        assert await stock_of(http, admin, item) == 4

        other = await redeem(http, token, item, key, quantity=2)
        assert other.status_code == 409
        assert other.json()["detail"] == \
            "this Idempotency-Key was used for another redemption"
        assert (await books_of(http, token, item))[0] == START_POINTS - PRICE
        await assert_consistent(http, admin)


async def abandon(branch: Branch, token: str, item: str, key: str) -> None:
    """Send a redemption and hang up before the answer: the customer never learns of it."""
    body = json.dumps({"item_id": item, "quantity": 1})
    parts = urlsplit(branch.url)
    _, writer = await asyncio.open_connection(parts.hostname, parts.port)
    writer.write((f"POST /api/v1/mall/redemptions HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                  f"Authorization: Bearer {token}\r\nIdempotency-Key: {key}\r\n"
                  f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
                  f"{body}").encode())
    await writer.drain()
    writer.close()


async def test_retries_after_a_killed_server_never_debit_twice(branch: Branch) -> None:
    stock, requests, in_flight = 60, 120, 16
    async with client(branch) as http:
        item, admin, tokens = await open_sale(http, stock, customers=12)
        names = list(tokens)
        # Three answers lost for sure: sold, but the customers hung up before hearing it.
        lost = [(names[j], f"{item}-lost-{j}") for j in range(3)]
        for name, key in lost:
            await abandon(branch, tokens[name], item, key)
        for _ in range(200):
            orders = [await books_of(http, tokens[name], item) for name, _ in lost]
            if all(o for _, o in orders):
                break
            await asyncio.sleep(0.05)
        assert all(o for _, o in orders), "a redemption sent and hung up on was not made"
        lost_orders = [o[0]["id"] for _, o in orders]
    jobs = [(names[i % len(names)], f"{item}-{i}") for i in range(requests)]
    # Then a steady stream, ``in_flight`` at a time (all at once would be one batch,
    # answered together); the kill comes after its tenth sale, once the next ones are out.
    gate, tenth_sale, going = asyncio.Semaphore(in_flight), asyncio.Event(), asyncio.Event()
    sold, outstanding, unanswered = [0], [0], [0]

    async def first_try(http: httpx.AsyncClient, name: str, key: str) -> httpx.Response | None:
        async with gate:
            outstanding[0] += 1
            going.set()
            try:
                r = await redeem(http, tokens[name], item, key)
            except httpx.ConnectError:
                return None  # the server was gone already
            except httpx.TransportError:
                unanswered[0] += 1  # sent, and the server died with it: outcome unknown
                return None
            finally:
                outstanding[0] -= 1
        if r.status_code == 201:
            sold[0] += 1
            if sold[0] == 10:
                tenth_sale.set()
        return r

    async def kill_mid_sale() -> None:
        await tenth_sale.wait()
        going.clear()
        if not outstanding[0]:
            await going.wait()
        await asyncio.sleep(0.002)  # their bytes reach the server
        branch.server.stop(signal.SIGKILL)

    async with client(branch) as http:
        killer = asyncio.create_task(kill_mid_sale())
        before = await asyncio.gather(*(first_try(http, n, k) for n, k in jobs))
        await killer
    assert sold[0] >= 10 and unanswered[0] > 0, (sold, unanswered)

    branch.restart()  # on the same data and database; every key is tried again
    jobs += lost
    before += [None] * len(lost)
    async with client(branch) as http:
        after = await asyncio.gather(*(redeem(http, tokens[n], item, k) for n, k in jobs))
        assert {r.status_code for r in after} <= {201, 409}
        for first, again in zip(before, after, strict=True):
            if first is not None and first.status_code == 201:  # the retry finds that order
                assert again.status_code == 201
                assert again.json()["order_id"] == first.json()["order_id"]
                assert again.headers.get("Idempotent-Replayed") == "true"
        assert [r.json()["order_id"] for r in after[-len(lost):]] == lost_orders
        assert all(r.headers.get("Idempotent-Replayed") == "true" for r in after[-len(lost):])
        placed = 0
        for name, token in tokens.items():
            balance, orders = await books_of(http, token, item)
            mine = {r.json()["order_id"] for (n, _), r in zip(jobs, after, strict=True)
                    if n == name and r.status_code == 201}
            assert {o["id"] for o in orders} == mine
            assert balance == START_POINTS - PRICE * len(orders), name
            placed += sum(o["quantity"] for o in orders)
        assert await stock_of(http, admin, item) + placed == stock
        assert placed == stock  # every key retried: the stock is sold out
    branch.server.stop()
    assert await consistency(branch.database) == []
