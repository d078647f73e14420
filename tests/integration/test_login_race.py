"""Wrong passwords sent all at once against a real ``vbank serve``: the per-user lockout holds
exactly, however many arrive together, and right passwords still do not use it up."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from vbank.serverproc import ServerProcess, start_server

PER_USER = 5
# No calls here: spare the cores for the race. Room for every request from the test's one
# address, so that only the per-user limit is being measured.
ENV = {"VBANK_MEDIA_WORKERS": "0", "VBANK_LOGIN_FAILURES_PER_USER": str(PER_USER),
       "VBANK_LOGIN_FAILURES_PER_ADDRESS": "1000", "VBANK_LOGINS_PER_ADDRESS_PER_MINUTE": "1000"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = start_server(tmp_path_factory.mktemp("login-race") / "data", env=ENV)
    yield proc
    proc.stop()


async def login(http: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await http.post("/api/v1/auth/login",
                           json={"username": username, "password": password})


async def test_fifteen_wrong_passwords_at_once_have_only_five_checked(
        server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
        answers = await asyncio.gather(*(login(http, "bob", f"guess-{i}") for i in range(15)))

        assert Counter(r.status_code for r in answers) == {401: PER_USER, 429: 15 - PER_USER}
        assert all(r.json()["detail"] == "too many login attempts; try again later"
                   and int(r.headers["Retry-After"]) >= 1
                   for r in answers if r.status_code == 429)
        assert (await login(http, "bob", "bob")).status_code == 429  # locked, as one at a time
        assert (await login(http, "carol", "carol")).status_code == 200


async def test_right_passwords_at_any_pace_do_not_use_up_the_allowance(
        server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
        for _ in range(PER_USER + 2):
            assert (await login(http, "tom", "tom")).status_code == 200
        together = await asyncio.gather(*(login(http, "tom", "tom") for _ in range(PER_USER)))
        assert [r.status_code for r in together] == [200] * PER_USER

        wrong = await asyncio.gather(*(login(http, "tom", "guess") for _ in range(PER_USER)))
        assert [r.status_code for r in wrong] == [401] * PER_USER  # all five still there
        assert (await login(http, "tom", "tom")).status_code == 429
