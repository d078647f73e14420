"""HTTP API edges: authentication, roles, validation; never a server error."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from vbank.api.app import create_app
from vbank.config import Settings
from vbank.store.db import upgrade


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    data: Path = tmp_path_factory.mktemp("api")
    settings = Settings(data=data, demo=True, media_workers=1, digital_human=False)
    upgrade(settings.database_url)
    with TestClient(create_app(settings), client=("127.0.0.1", 5000)) as c:
        yield c


def token(client: TestClient, user: str) -> dict[str, str]:
    r = client.post("/api/v1/auth/login", json={"username": user, "password": user})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def test_login_returns_token_and_role(client: TestClient) -> None:
    r = client.post("/api/v1/auth/login", json={"username": "tina", "password": "tina"})
    assert r.status_code == 200
    assert r.json()["role"] == "teller" and r.json()["access_token"].count(".") == 2


@pytest.mark.parametrize("body", [{"username": "alice", "password": "wrong"},
                                  {"username": "nobody", "password": "x"}])
def test_wrong_credentials_get_401(client: TestClient, body: dict[str, str]) -> None:
    r = client.post("/api/v1/auth/login", json=body)
    assert r.status_code == 401
    assert r.json() == {"detail": "wrong username or password"}


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer not.a.token"},
                                     {"Authorization": "Basic YWxpY2U6YWxpY2U="}])
def test_missing_or_bad_token_gets_401(client: TestClient, headers: dict[str, str]) -> None:
    r = client.get("/api/v1/services", headers=headers)
    assert r.status_code == 401
    assert "detail" in r.json()


def test_token_signed_with_another_key_is_refused(client: TestClient) -> None:
    from vbank.auth import Role, issue_token

    forged = issue_token("admin", Role.ADMIN, "another-secret", 600)
    r = client.get("/api/v1/services", headers={"Authorization": f"Bearer {forged}"})
    assert r.status_code == 401


def test_expired_token_is_refused(client: TestClient) -> None:
    from vbank.auth import Role, issue_token
    from vbank.config import DEMO_SECRET

    old = issue_token("alice", Role.CUSTOMER, DEMO_SECRET, 60, now=1_000_000)
    r = client.get("/api/v1/services", headers={"Authorization": f"Bearer {old}"})
    assert r.status_code == 401 and r.json()["detail"] == "token expired"


def test_services_lists_the_four_fixed_ids(client: TestClient) -> None:
    r = client.get("/api/v1/services", headers=token(client, "alice"))
    assert r.status_code == 200
    ids = [s["id"] for s in r.json()]
    assert ids == ["loan_signing", "risk_assessment", "account_opening", "general_enquiry"]
    assert all(s["name"]["zh"] and s["estimated_wait_s"] > 0 for s in r.json())


@pytest.mark.parametrize("body", [{}, {"username": "alice"}, {"username": "", "password": "x"},
                                  {"username": "a" * 65, "password": "x"}, [], "text"])
def test_malformed_login_gets_422_naming_the_field(client: TestClient, body: object) -> None:
    r = client.post("/api/v1/auth/login", json=body)
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"]


def test_invalid_json_body_gets_422(client: TestClient) -> None:
    r = client.post("/api/v1/auth/login", content=b"{not json",
                    headers={"content-type": "application/json"})
    assert r.status_code == 422


def test_session_of_someone_else_is_forbidden(client: TestClient) -> None:
    r = client.get("/api/v1/sessions/s_doesnotexist", headers=token(client, "alice"))
    assert r.status_code == 404
    assert client.get("/api/v1/sessions/x").status_code == 401


def test_refresh_gives_a_new_token(client: TestClient) -> None:
    r = client.post("/api/v1/auth/refresh", headers=token(client, "bob"))
    assert r.status_code == 200 and r.json()["username"] == "bob"


def test_health_and_metrics(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    text = client.get("/metrics").text
    assert 'vbank_queue_length{service="loan_signing"}' in text
    assert "vbank_event_loop_lag_seconds" in text


def test_metrics_refused_off_loopback(tmp_path: Path) -> None:
    settings = Settings(data=tmp_path, demo=True, media_workers=1, digital_human=False)
    upgrade(settings.database_url)
    with TestClient(create_app(settings), client=("192.0.2.7", 5000)) as c:
        assert c.get("/metrics").status_code == 403


def test_pages_are_served(client: TestClient) -> None:
    for path in ("/", "/teller"):
        r = client.get(path)
        assert r.status_code == 200 and "<html" in r.text.lower()


def test_queues_are_for_staff_only(client: TestClient) -> None:
    assert client.get("/api/v1/queues", headers=token(client, "alice")).status_code == 403
    r = client.get("/api/v1/queues", headers=token(client, "sam"))
    assert r.status_code == 200
    assert r.json()["services"][0]["id"] == "loan_signing"


def test_admins_create_users_and_only_admins(client: TestClient) -> None:
    body = {"username": "wang.fang", "password": "a long secret", "role": "teller",
            "display_name": "Wang Fang", "skills": ["loan_signing"]}
    for who in ("alice", "tina", "sam"):
        r = client.post("/api/v1/admin/users", json=body, headers=token(client, who))
        assert r.status_code == 403, who
    r = client.post("/api/v1/admin/users", json=body, headers=token(client, "admin"))
    assert r.status_code == 201, r.text
    assert r.json() == {"username": "wang.fang", "display_name": "Wang Fang", "role": "teller",
                        "skills": ["loan_signing"], "tier": "standard"}
    login = client.post("/api/v1/auth/login",
                        json={"username": "wang.fang", "password": "a long secret"})
    assert login.status_code == 200 and login.json()["role"] == "teller"
    again = client.post("/api/v1/admin/users", json=body, headers=token(client, "admin"))
    assert again.status_code == 409


@pytest.mark.parametrize("change,field", [
    ({"skills": ["mortgages"]}, "skills"),
    ({"role": "customer"}, "skills"),  # skills are for tellers
    ({"password": "short"}, "password"),
    ({"username": "two words"}, "username"),
    ({"role": "wizard"}, "role"),
])
def test_bad_new_users_are_refused_naming_the_field(client: TestClient,
                                                    change: dict[str, object],
                                                    field: str) -> None:
    body = {"username": "x1", "password": "a long secret", "role": "teller",
            "skills": ["loan_signing"], **change}
    r = client.post("/api/v1/admin/users", json=body, headers=token(client, "admin"))
    assert r.status_code == 422 and field in r.text


def test_staff_change_the_branch_policy(client: TestClient) -> None:
    assert client.get("/api/v1/admin/branch",
                      headers=token(client, "tina")).status_code == 403
    r = client.put("/api/v1/admin/branch", json={"counters": "closed", "queue_threshold_s": 5},
                   headers=token(client, "sam"))
    assert r.status_code == 200, r.text
    assert r.json()["counters"] == "closed" and r.json()["counters_open"] is False
    assert r.json()["queue_threshold_s"] == 5
    # this server runs without the digital human: it cannot be switched on
    r = client.put("/api/v1/admin/branch", json={"digital_human": True},
                   headers=token(client, "admin"))
    assert r.status_code == 409 and "not loaded" in r.text
    r = client.put("/api/v1/admin/branch", json={"counters": "hours",
                                                 "per_service_threshold": True},
                   headers=token(client, "admin"))
    assert r.json()["counters_open"] is True and r.json()["queue_threshold_s"] is None
    assert client.put("/api/v1/admin/branch", json={"counters": "maybe"},
                      headers=token(client, "admin")).status_code == 422
