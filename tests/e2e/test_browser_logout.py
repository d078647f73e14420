"""Logging out of a page, in real Chromium against ``vbank serve --demo``: the branch refuses
the page's token from then on, so a copy of it (a shared machine, a page's storage read by
someone else) is worth nothing."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import httpx
import pytest

from tests.e2e.browsers import Person
from vbank.serverproc import ServerProcess

pytestmark = pytest.mark.e2e


def test_the_logout_button_signs_the_login_out_at_the_branch(
        server: ServerProcess, person: Callable[..., Person]) -> None:
    tina = person("tina", "/teller")
    token = json.loads(tina.page.evaluate("sessionStorage.getItem('vbank.teller')"))["token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"{server.url}/api/v1/queues", headers=headers).status_code == 200

    tina.page.locator("#logout").click()
    deadline = time.monotonic() + 10
    while (r := httpx.get(f"{server.url}/api/v1/queues", headers=headers)).status_code != 401:
        assert time.monotonic() < deadline, "the token still works after logging out"
        time.sleep(0.2)
    assert r.json()["detail"] == "signed out: log in again"
    assert tina.page.evaluate("sessionStorage.getItem('vbank.teller')") is None
