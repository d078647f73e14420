"""Campaigns and earning over HTTP: a lottery whose pool is drawn from concurrently never gives
more than it holds; task chains pay once when their steps are done in order; rated calls and
the day's first lobby visit earn; expiry takes what is past its date, from the desk and from
``vbank points expire``."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import yaml
from fastapi.testclient import TestClient

from vbank.api.app import create_app
from vbank.config import Settings
from vbank.domain.mall import MALL_PATH, load_mall
from vbank.serverproc import start_server
from vbank.store import mall as catalogue
from vbank.store.db import make_engine, sessionmaker, upgrade
from vbank.store.models import CallSession
from vbank.store.points import PointsDesk

POOL = {"id": "pool", "name": "Pool", "cost": 5, "out_of": 10, "prizes": [
    {"id": "big", "name": "Big prize", "odds": 9, "stock": 3},
    {"id": "bonus", "name": "Bonus", "odds": 1, "stock": 100, "points": 7}]}


def mall_file(tmp_path: Path) -> Path:
    doc = yaml.safe_load(MALL_PATH.read_text(encoding="utf-8"))
    doc["lotteries"] = [POOL]
    path = tmp_path / "mall.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


def test_concurrent_draws_never_win_more_prizes_than_the_pool_holds(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data", env={"VBANK_MALL": str(mall_file(tmp_path))})
    try:
        tokens = {name: server.login(name) for name in ("alice", "bob", "carol")}
        start = {name: 500 if name == "alice" else 2000 if name == "bob" else 100
                 for name in tokens}

        async def draw(client: httpx.AsyncClient, name: str, key: str) -> httpx.Response:
            return await client.post("/api/v1/lotteries/pool/draws", headers={
                "Authorization": f"Bearer {tokens[name]}", "Idempotency-Key": key})

        async def storm() -> list[tuple[str, str, httpx.Response]]:
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
                asks = [(name, uuid.uuid4().hex) for name in tokens for _ in range(10)]
                replies = await asyncio.gather(*(draw(client, n, k) for n, k in asks))
                again = await draw(client, *asks[0])  # a retry of the first: the same draw
                assert again.status_code == 201 and again.headers["Idempotent-Replayed"]
                assert again.json()["draw_id"] == replies[0].json()["draw_id"]
                assert again.json()["points_spent"] == 0
                return [(n, k, r) for (n, k), r in zip(asks, replies, strict=True)]

        results = asyncio.run(storm())
        assert all(r.status_code == 201 for _, _, r in results), [r.text for *_, r in results]
        prizes = [r.json()["prize"] for _, _, r in results]
        big = sum(1 for p in prizes if p and p["id"] == "big")
        assert big == 3  # 9 in 10 rolls land on it: 30 draws win all 3, and never a 4th
        campaigns = httpx.get(f"{server.url}/api/v1/campaigns",
                              headers={"Authorization": f"Bearer {tokens['alice']}"}).json()
        pool = next(lot for lot in campaigns["lotteries"] if lot["id"] == "pool")
        assert {p["id"]: p["stock"] for p in pool["prizes"]}["big"] == 0
        assert pool["draws_today"] == 10
        for name, token in tokens.items():
            mine = [r.json() for n, _, r in results if n == name]
            bonus = sum(7 for d in mine if d["prize"] and d["prize"]["id"] == "bonus")
            balance = httpx.get(f"{server.url}/api/v1/points",
                                headers={"Authorization": f"Bearer {token}"}).json()["balance"]
            assert balance == start[name] - 5 * 10 + bonus
            history = httpx.get(f"{server.url}/api/v1/lotteries/draws",
                                headers={"Authorization": f"Bearer {token}"}).json()
            assert sorted(d["draw_id"] for d in history) == sorted(d["draw_id"] for d in mine)
        wrong = httpx.post(f"{server.url}/api/v1/lotteries/nope/draws", headers={
            "Authorization": f"Bearer {tokens['bob']}", "Idempotency-Key": "x"})
        assert wrong.status_code == 404
        teller = httpx.post(f"{server.url}/api/v1/lotteries/pool/draws", headers={
            "Authorization": f"Bearer {server.login('tina')}", "Idempotency-Key": "y"})
        assert teller.status_code == 403
    finally:
        server.stop()
    assert asyncio.run(_problems(f"sqlite+aiosqlite:///{tmp_path / 'data' / 'vbank.db'}")) == []


async def _problems(url: str) -> list[str]:
    engine = make_engine(url)
    try:
        async with sessionmaker(engine)() as db:
            return await catalogue.consistency(db)
    finally:
        await engine.dispose()


# --------------------------------------------------------------------------- in-process app
@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    # one media worker process: media_workers=0 would make *this* process's aiortc pass
    # packets through undecoded, and later tests' peers hear nothing
    settings = Settings(data=tmp_path, demo=True, media_workers=1, digital_human=False)
    upgrade(settings.database_url)
    with TestClient(create_app(settings), client=("127.0.0.1", 5000)) as c:
        yield c


def login(client: TestClient, name: str) -> dict[str, str]:
    r = client.post("/api/v1/auth/login", json={"username": name, "password": name})
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def balance(client: TestClient, who: dict[str, str]) -> int:
    return int(client.get("/api/v1/points", headers=who).json()["balance"])


def test_the_first_lobby_visit_of_a_day_earns_and_a_chain_pays_once_when_done_in_order(
        client: TestClient) -> None:
    alice = login(client, "alice")
    first = client.post("/api/v1/lobby/visits", headers=alice).json()
    assert first == {"points_earned": 10, "balance": 510}
    assert client.post("/api/v1/lobby/visits", headers=alice).json()["points_earned"] == 0
    rewards = client.app.state.rewards  # type: ignore[attr-defined]
    portal = client.portal  # type: ignore[attr-defined]
    portal.call(rewards.award, "alice", "contract_signed", "s1")  # out of order: not a step
    chain = client.get("/api/v1/campaigns", headers=alice).json()["task_chains"][0]
    assert (chain["id"], chain["done"], chain["completed"]) == ("getting_started", 1, False)
    portal.call(rewards.award, "alice", "risk_assessed", "r1")
    portal.call(rewards.award, "alice", "contract_signed", "s2")
    chain = client.get("/api/v1/campaigns", headers=alice).json()["task_chains"][0]
    assert chain["completed"] is True
    portal.call(rewards.award, "alice", "contract_signed", "s3")  # the chain paid already
    kinds = [(t["reason"], t["points"])
             for t in client.get("/api/v1/points/transactions", headers=alice).json()]
    assert kinds.count(("chain:getting_started", 200)) == 1
    assert balance(client, alice) == 500 + 10 + 100 + 50 + 100 + 200 + 100
    staff = client.get("/api/v1/campaigns", headers=login(client, "tina")).json()
    assert staff["task_chains"][0]["done"] is None  # staff see campaigns, not progress
    assert client.post("/api/v1/lobby/visits", headers=login(client, "tina")).status_code == 403


def test_a_finished_call_rated_once_earns_once(client: TestClient) -> None:
    alice, bob = login(client, "alice"), login(client, "bob")
    now = datetime.now(UTC)

    async def sessions() -> None:
        async with client.app.state.sessions.begin() as db:  # type: ignore[attr-defined]
            db.add(CallSession(id="done1", reference="R-DONE1", customer="alice",
                               service="general_enquiry", state="ended", created_at=now,
                               started_at=now, ended_at=now, tellers=["tina"]))
            db.add(CallSession(id="live1", reference="R-LIVE1", customer="alice",
                               service="general_enquiry", state="in_call", created_at=now,
                               started_at=now, tellers=["tina"]))

    client.portal.call(sessions)  # type: ignore[attr-defined]
    r = client.post("/api/v1/sessions/done1/rating", headers=alice, json={"stars": 5})
    assert r.status_code == 201 and r.json()["points_earned"] == 20
    assert balance(client, alice) == 520
    again = client.post("/api/v1/sessions/done1/rating", headers=alice, json={"stars": 5})
    assert again.status_code == 201 and again.json()["points_earned"] == 0
    other = client.post("/api/v1/sessions/done1/rating", headers=alice, json={"stars": 1})
    assert other.status_code == 409
    assert client.post("/api/v1/sessions/live1/rating", headers=alice,
                       json={"stars": 4}).status_code == 409  # not finished
    assert client.post("/api/v1/sessions/done1/rating", headers=bob,
                       json={"stars": 4}).status_code == 404  # not hers to rate
    bad = client.post("/api/v1/sessions/done1/rating", headers=alice, json={"stars": 6})
    assert bad.status_code == 422 and "stars" in bad.text
    assert balance(client, alice) == 520


# --------------------------------------------------------------------------- expiry
def test_expiry_takes_only_points_past_their_date(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'vbank.db'}"
    upgrade(url)
    earned_at = datetime(2025, 1, 1, tzinfo=UTC)
    now = [earned_at]

    async def run() -> tuple[int, int]:
        desk = PointsDesk(url, load_mall(), clock=lambda: now[0])
        desk.start()
        try:
            await desk.earn("dora", "old", 100, "risk_assessed")
            now[0] = earned_at + timedelta(days=200)
            await desk.earn("dora", "newer", 40, "risk_assessed")
            now[0] = earned_at + timedelta(days=366)  # the first lot is past its year
            expired = await desk.expire()
            again = await desk.expire()
            return expired, again
        finally:
            await desk.stop()

    expired, again = asyncio.run(run())
    assert (expired, again) == (100, 0)

    async def state() -> tuple[dict[str, object], list[str]]:
        engine = make_engine(url)
        try:
            async with sessionmaker(engine)() as db:
                return await catalogue.account(db, "dora"), await catalogue.consistency(db)
        finally:
            await engine.dispose()

    account, problems = asyncio.run(state())
    assert account["balance"] == 40 and account["growth"] == 140  # growth never expires
    assert problems == []


def test_vbank_points_expire_on_the_command_line(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'vbank.db'}"
    upgrade(url)

    async def earn_long_ago() -> None:
        desk = PointsDesk(url, load_mall(),
                          clock=lambda: datetime.now(UTC) - timedelta(days=400))
        desk.start()
        try:
            await desk.earn("eve", "ancient", 75, "risk_assessed")
        finally:
            await desk.stop()

    asyncio.run(earn_long_ago())
    done = subprocess.run([sys.executable, "-m", "vbank", "points", "expire", "--data",
                           str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "expired 75 points"


def test_a_broken_mall_file_stops_the_server_naming_what_is_wrong(tmp_path: Path) -> None:
    bad = tmp_path / "mall.yaml"
    bad.write_text("items:\n  - {id: mug, points: 0, stock: 1}\n", encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "vbank", "serve", "--demo", "--data",
                           str(tmp_path / "data"), "--port", "1"], capture_output=True,
                          text=True, timeout=60, env={**os.environ, "VBANK_MALL": str(bad)})
    assert done.returncode == 2
    assert f"{bad}: items[0] (mug): points must be a whole number ≥ 1" in done.stderr


def test_a_ledger_page_past_the_largest_id_is_a_422_not_a_500(client: TestClient) -> None:
    """The schema fuzzer's find: SQLite stores ids up to 2**63 - 1; a larger ``before``
    reached the query and raised OverflowError."""
    alice = login(client, "alice")
    r = client.get("/api/v1/points/transactions", params={"before": 2**70}, headers=alice)
    assert r.status_code == 422, r.text
    r = client.get("/api/v1/points/transactions", params={"before": 2**63 - 1}, headers=alice)
    assert r.status_code == 200
