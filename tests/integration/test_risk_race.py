"""Risk assessments sent all at once, on SQLite and PostgreSQL: over HTTP to a real
``vbank serve``, and straight to the store in transactions of their own (as the in-call
flows record them). The day's attempts hold exactly, so a customer cannot shop for the level
they want by sending many at once. PostgreSQL runs are skipped, saying why, where none
answers."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from vbank.bench.mall import postgres_database, postgres_unreachable
from vbank.domain.risk import TooManyAttempts
from vbank.domain.risk_questionnaire import load_questionnaire
from vbank.serverproc import ServerProcess, start_server
from vbank.store.db import make_engine, sessionmaker
from vbank.store.risk import record_assessment

PER_DAY = 3
ENV = {"VBANK_MEDIA_WORKERS": "0", "VBANK_RISK_ATTEMPTS_PER_DAY": str(PER_DAY)}
QUESTIONS = [q.id for q in load_questionnaire().questions]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp(f"risk-race-{request.param}")
    if request.param == "sqlite":
        yield from _serve(data)
        return
    why = postgres_unreachable()
    if why is not None:
        pytest.skip(why)
    with postgres_database("vbank_risk_race") as url:  # fresh for this module, dropped after
        yield from _serve(data, "--db", url)


def _serve(data: Path, *options: str) -> Iterator[ServerProcess]:
    proc = start_server(data, *options, env=ENV)
    try:
        yield proc
    finally:
        proc.stop()


async def new_customer(http: httpx.AsyncClient) -> dict[str, str]:
    """A customer with no assessment yet; their bearer header."""
    r = await http.post("/api/v1/auth/login", json={"username": "admin", "password": "admin"})
    admin = {"Authorization": f"Bearer {r.json()['access_token']}"}
    name = f"shopper-{uuid.uuid4().hex[:8]}"
    r = await http.post("/api/v1/admin/users", headers=admin, json={
        "username": name, "password": "shopper-password", "role": "customer"})
    assert r.status_code == 201, r.text
    r = await http.post("/api/v1/auth/login",
                        json={"username": name, "password": "shopper-password"})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


async def test_ten_assessments_at_once_make_exactly_the_days_three(
        server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
        customer = await new_customer(http)
        # each racer answers otherwise (all A, all B, ...): which levels won does not matter
        answers = [{q: "ABCD"[i % 4] for q in QUESTIONS} for i in range(10)]
        sent = await asyncio.gather(*(
            http.post("/api/v1/risk/assessments", headers=customer, json={"answers": a})
            for a in answers))

        assert Counter(r.status_code for r in sent) == {201: PER_DAY, 429: 10 - PER_DAY}
        assert all(r.json()["detail"] == "at most 3 risk assessments a day; try again tomorrow"
                   and int(r.headers["Retry-After"]) >= 1
                   for r in sent if r.status_code == 429)
        again = await http.post("/api/v1/risk/assessments", headers=customer,
                                json={"answers": answers[0]})
        assert again.status_code == 429
        current = await http.get("/api/v1/risk/assessments/current", headers=customer)
        assert current.status_code == 200
        assert current.json()["level"] in {r.json()["level"] for r in sent
                                           if r.status_code == 201}


async def test_customers_racing_at_once_each_get_their_own_three(
        server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
        customers = [await new_customer(http) for _ in range(3)]
        answers = {q: "B" for q in QUESTIONS}
        sent = await asyncio.gather(*(
            http.post("/api/v1/risk/assessments", headers=c, json={"answers": answers})
            for c in customers for _ in range(5)))

        for i in range(3):
            mine = sent[i * 5:(i + 1) * 5]
            assert Counter(r.status_code for r in mine) == {201: PER_DAY, 429: 5 - PER_DAY}



async def test_attempts_recorded_at_once_in_transactions_of_their_own_keep_the_limit(
        database: str) -> None:
    engine = make_engine(database)
    sessions = sessionmaker(engine)
    now = datetime(2025, 3, 10, 15, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    answers = {q: "A" for q in QUESTIONS}

    async def attempt(customer: str) -> bool:
        try:
            async with sessions.begin() as db:
                await record_assessment(db, customer, answers, now, per_day=PER_DAY)
        except TooManyAttempts:
            return False
        return True

    try:
        made = await asyncio.gather(*(attempt(c) for c in ("li", "wang") for _ in range(8)))
    finally:
        await engine.dispose()
    assert (sum(made[:8]), sum(made[8:])) == (PER_DAY, PER_DAY)
