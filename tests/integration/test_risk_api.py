"""Risk assessment over HTTP against a real app and SQLite: questionnaire, assessments, the
day's attempts, products and suitability, roles."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from vbank.api.app import create_app
from vbank.api.risk import branch_now
from vbank.config import Settings
from vbank.domain.risk_questionnaire import load_questionnaire
from vbank.store.db import upgrade

SHANGHAI = ZoneInfo("Asia/Shanghai")
Q = load_questionnaire()
ALL_A = {q.id: "A" for q in Q.questions}
ALL_LAST = {q.id: q.options[-1].id for q in Q.questions}
ALL_C = {q.id: "C" for q in Q.questions}  # C4
ALL_B = {q.id: "B" for q in Q.questions}  # C2
_names = itertools.count(1)


class Clock:
    """The branch's time as the app sees it (``branch_now`` is overridden)."""

    def __init__(self) -> None:
        # 23:30 in Shanghai is 15:30 UTC: the local day ends before the UTC one
        self.now = datetime(2025, 3, 10, 23, 30, tzinfo=SHANGHAI)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(scope="module")
def app_and_clock(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Clock]]:
    data: Path = tmp_path_factory.mktemp("risk")
    settings = Settings(data=data, demo=True, media_workers=0, digital_human=False)
    upgrade(settings.database_url)
    app = create_app(settings)
    clock = Clock()
    app.dependency_overrides[branch_now] = clock
    with TestClient(app, client=("127.0.0.1", 5000)) as c:
        yield c, clock


@pytest.fixture
def client(app_and_clock: tuple[TestClient, Clock]) -> TestClient:
    return app_and_clock[0]


@pytest.fixture
def clock(app_and_clock: tuple[TestClient, Clock]) -> Iterator[Clock]:
    clock = app_and_clock[1]
    start = clock.now
    yield clock
    clock.now = start


def login(client: TestClient, user: str, password: str | None = None) -> dict[str, str]:
    r = client.post("/api/v1/auth/login", json={"username": user, "password": password or user})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


@pytest.fixture
def customer(client: TestClient) -> dict[str, str]:
    """A new customer with no assessment yet."""
    name = f"risk{next(_names)}"
    r = client.post("/api/v1/admin/users", headers=login(client, "admin"),
                    json={"username": name, "password": "password1", "role": "customer"})
    assert r.status_code == 201, r.text
    return login(client, name, "password1")


def assess(client: TestClient, headers: dict[str, str], answers: dict[str, str]) -> dict[str, Any]:
    r = client.post("/api/v1/risk/assessments", headers=headers, json={"answers": answers})
    assert r.status_code == 201, r.text
    return r.json()


def test_questionnaire_has_questions_with_options_in_both_languages(
        client: TestClient, customer: dict[str, str]) -> None:
    r = client.get("/api/v1/risk/questionnaire", headers=customer)
    assert r.status_code == 200
    body = r.json()
    assert body["valid_months"] == 12
    assert [q["id"] for q in body["questions"]] == [f"q{i}" for i in range(1, 11)]
    first = body["questions"][0]
    assert first["text"] == {"en": "How old are you?", "zh": "您的年龄是？"}
    assert [o["id"] for o in first["options"]] == ["A", "B", "C", "D"]
    assert all(set(o) == {"id", "text"} for q in body["questions"] for o in q["options"])


@pytest.mark.parametrize(("answers", "level", "score"), [
    (ALL_A, "C1", 12), (ALL_B, "C2", 24), (ALL_C, "C4", 36), (ALL_LAST, "C5", 48)])
def test_assessment_gives_the_level_of_the_answers(
        client: TestClient, customer: dict[str, str], clock: Clock,
        answers: dict[str, str], level: str, score: int) -> None:
    r = client.post("/api/v1/risk/assessments", headers=customer, json={"answers": answers})
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["level"], body["score"]) == (level, score)
    assert datetime.fromisoformat(body["valid_until"]) == clock.now.replace(year=2026)
    r = client.get("/api/v1/risk/assessments/current", headers=customer)
    assert r.status_code == 200 and r.json()["level"] == level


@pytest.mark.parametrize(("answers", "field", "message"), [
    ({k: v for k, v in ALL_A.items() if k != "q7"}, "q7", "no answer to question q7"),
    (ALL_A | {"q2": "E"}, "q2", "question q2 has no option E"),
    (ALL_A | {"q42": "A"}, "q42", "unknown question q42"),
])
def test_incomplete_or_unknown_answers_get_422_naming_the_question(
        client: TestClient, customer: dict[str, str], answers: dict[str, str], field: str,
        message: str) -> None:
    r = client.post("/api/v1/risk/assessments", headers=customer, json={"answers": answers})
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert detail[0]["loc"] == ["body", "answers", field]
    assert detail[0]["msg"] == message


@pytest.mark.parametrize("body", [{}, {"answers": ["A"]}, {"answers": {"q1": 1}},
                                  {"answers": {"q1": "A" * 40}}, [], "text"])
def test_malformed_assessment_body_gets_422(client: TestClient, customer: dict[str, str],
                                            body: object) -> None:
    r = client.post("/api/v1/risk/assessments", headers=customer, json=body)
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"][0] == "body"


def test_fourth_attempt_the_same_day_gets_429_until_local_midnight(
        client: TestClient, customer: dict[str, str], clock: Clock) -> None:
    for answers in (ALL_A, ALL_B, ALL_C):
        assess(client, customer, answers)
        clock.now += timedelta(minutes=5)
    r = client.post("/api/v1/risk/assessments", headers=customer, json={"answers": ALL_LAST})
    assert r.status_code == 429
    assert r.json()["detail"] == "at most 3 risk assessments a day; try again tomorrow"
    assert r.headers["Retry-After"] == str(15 * 60)  # 23:45 → midnight in Shanghai
    # the last valid assessment stands
    r = client.get("/api/v1/risk/assessments/current", headers=customer)
    assert r.json()["level"] == "C4"
    # 00:05 in Shanghai is still the same UTC day: the limit follows the branch's day
    clock.now += timedelta(minutes=20)
    assert assess(client, customer, ALL_LAST)["level"] == "C5"


def test_refused_answers_do_not_count_as_attempts(
        client: TestClient, customer: dict[str, str]) -> None:
    for _ in range(3):
        r = client.post("/api/v1/risk/assessments", headers=customer,
                        json={"answers": {"q1": "A"}})
        assert r.status_code == 422
    for answers in (ALL_A, ALL_B, ALL_C):
        assess(client, customer, answers)


def test_products_list_their_risk_levels(client: TestClient, customer: dict[str, str]) -> None:
    r = client.get("/api/v1/products", headers=customer)
    assert r.status_code == 200
    products = r.json()
    assert sorted(p["risk"] for p in products) == ["R1", "R2", "R3", "R4", "R5"]
    assert all(p["name"]["zh"] and p["expected_return"]["en"] for p in products)


def suit(client: TestClient, headers: dict[str, str], product: str,
         body: object = None) -> dict[str, Any]:
    r = client.post(f"/api/v1/products/{product}/suitability", headers=headers,
                    json=body) if body is not None else client.post(
        f"/api/v1/products/{product}/suitability", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def test_without_an_assessment_nothing_may_be_bought(client: TestClient,
                                                     customer: dict[str, str]) -> None:
    body = suit(client, customer, "daily_cash")
    assert (body["suitable"], body["needs_acknowledgement"], body["allowed"]) == (
        False, False, False)
    assert body["level"] is None and "take the risk assessment" in body["reason"]
    assert client.get("/api/v1/risk/assessments/current", headers=customer).status_code == 404


def test_c1_customer_may_buy_r1_only_even_with_an_acknowledgement(
        client: TestClient, customer: dict[str, str]) -> None:
    assess(client, customer, ALL_A)
    assert suit(client, customer, "daily_cash")["suitable"] is True
    body = suit(client, customer, "steady_bond_90", {"acknowledgement": "I accept the risk"})
    assert (body["suitable"], body["allowed"], body["acknowledged"]) == (False, False, False)
    assert body["reason"].startswith("a C1 (conservative) customer cannot buy an R2 product")


def test_product_above_the_level_needs_an_acknowledgement(
        client: TestClient, customer: dict[str, str]) -> None:
    assess(client, customer, ALL_B)  # C2
    assert suit(client, customer, "steady_bond_90")["suitable"] is True
    body = suit(client, customer, "csi300_index")
    assert (body["product_risk"], body["level"]) == ("R4", "C2")
    assert (body["suitable"], body["needs_acknowledgement"], body["allowed"],
            body["acknowledged"]) == (False, True, True, False)
    body = suit(client, customer, "csi300_index", {"acknowledgement": "I understand the risk"})
    assert body["acknowledged"] is True and body["needs_acknowledgement"] is True
    r = client.post("/api/v1/products/csi300_index/suitability", headers=customer,
                    json={"acknowledgement": "   "})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "acknowledgement"]


def test_the_latest_valid_assessment_counts_and_expires_after_twelve_months(
        client: TestClient, customer: dict[str, str], clock: Clock) -> None:
    assess(client, customer, ALL_LAST)
    clock.now += timedelta(hours=1)
    assess(client, customer, ALL_B)
    assert suit(client, customer, "commodity_futures")["level"] == "C2"
    clock.now = datetime(2026, 3, 11, 0, 20, tzinfo=SHANGHAI)  # 12 months minus 10 minutes
    assert suit(client, customer, "commodity_futures")["level"] == "C2"
    clock.now += timedelta(minutes=20)
    body = suit(client, customer, "commodity_futures")
    assert body["level"] is None and body["allowed"] is False


def test_unknown_product_is_404(client: TestClient, customer: dict[str, str]) -> None:
    r = client.post("/api/v1/products/moon_fund/suitability", headers=customer)
    assert r.status_code == 404 and r.json() == {"detail": "no such product"}


@pytest.mark.parametrize(("method", "path", "body"), [
    ("GET", "/api/v1/risk/questionnaire", None),
    ("POST", "/api/v1/risk/assessments", {"answers": ALL_A}),
    ("GET", "/api/v1/risk/assessments/current", None),
    ("GET", "/api/v1/products", None),
    ("POST", "/api/v1/products/daily_cash/suitability", None),
])
def test_customers_only(client: TestClient, method: str, path: str, body: object) -> None:
    r = client.request(method, path, headers=login(client, "tina"), json=body)
    assert r.status_code == 403 and "customer" in r.json()["detail"]
    r = client.request(method, path, json=body)
    assert r.status_code == 401
    r = client.request(method, path, json=body, headers={"Authorization": "Bearer x.y.z"})
    assert r.status_code == 401
