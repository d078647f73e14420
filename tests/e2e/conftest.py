"""Browser end-to-end fixtures: a real ``vbank serve --demo``, one Chromium process per person."""

from __future__ import annotations

import re
from collections.abc import Callable, Generator, Iterator
from pathlib import Path

import pytest
from playwright import sync_api

from tests.e2e.browsers import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, Person
from vbank.serverproc import ServerProcess, start_server

# window.vbank without the SDP bodies, for the failure report
DUMP_HOOKS = """JSON.stringify({...window.vbank,
    messages: window.vbank.messages.map(m => m.sdp ? {...m, sdp: '…'} : m)}, null, 1)"""


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
        item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    # Lets fixtures see whether the test body failed (for failure screenshots).
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture
def server_env() -> dict[str, str]:
    """Extra environment for ``vbank serve``; a test module overrides this fixture to change it
    (the default leaves the digital human switched off, see ``start_server``)."""
    return {}


@pytest.fixture
def server(tmp_path: Path, server_env: dict[str, str]) -> Iterator[ServerProcess]:
    # generous: with the digital human on, each media worker loads its models (10-20 s here)
    proc = start_server(tmp_path / "data", env=server_env, timeout=120)
    try:
        yield proc
    finally:
        proc.stop()
        # pytest shows this only when the test failed
        print("---- vbank serve output (tail) ----")
        print("\n".join(proc.output[-200:]))


# Module scope: sync Playwright keeps an event loop running on this thread, which must be
# gone before asyncio tests in other modules start their own.
@pytest.fixture(scope="module")
def playwright() -> Iterator[sync_api.Playwright]:
    with sync_api.sync_playwright() as p:
        yield p


@pytest.fixture
def person(request: pytest.FixtureRequest, playwright: sync_api.Playwright,
           server: ServerProcess) -> Iterator[Callable[..., Person]]:
    """person(user, path): that user, logged in on `path` in a browser of their own."""
    if not CHROMIUM.exists():
        pytest.skip(f"needs Debian's chromium at {CHROMIUM}")
    people: list[Person] = []

    def log_in(user: str, path: str, args: list[str] | None = None) -> Person:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True,
            args=CHROMIUM_ARGS if args is None else args)
        page = browser.new_context(viewport={"width": 1280, "height": 860}).new_page()
        who = Person(user, browser, page)
        page.on("pageerror", lambda e: who.errors.append(str(e)))
        people.append(who)
        page.goto(server.url + path)
        page.get_by_test_id("login-user").fill(user)
        page.get_by_test_id("login-password").fill(user)
        page.get_by_test_id("login-submit").click()
        page.wait_for_function("() => window.vbank.messages.some(m => m.type === 'welcome')")
        return who

    yield log_in
    report = getattr(request.node, "rep_call", None)
    for who in people:
        if report is not None and report.failed and who.browser.is_connected():
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            name = re.sub(r"\W+", "-", request.node.name)
            who.page.screenshot(path=str(ARTIFACTS / f"failed-{name}-{who.name}.png"))
            print(f"---- {who.name}: window.vbank ----")
            print(who.page.evaluate(DUMP_HOOKS))
        who.close()
    for who in people:
        assert not who.errors, f"uncaught errors in {who.name}'s page: {who.errors}"
