"""A customer and a teller hold a video call through the server, each in their own Chromium.

The pages expose what the tests read on ``window.vbank`` (state, sessionId, the last messages,
rendered remote frames); the tests click what a person would click, by ``data-testid``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.browsers import ARTIFACTS, Person

pytestmark = pytest.mark.e2e

TIMEOUT_MS = 20_000  # generous: two browsers, a server and its media workers share 2 cores
FRAMES = 30  # two seconds of 15 fps video


def vbank(page: Page, field: str) -> Any:
    return page.evaluate(f"window.vbank.{field}")


def wait_state(page: Page, state: str) -> None:
    page.wait_for_function("s => window.vbank.state === s", arg=state, timeout=TIMEOUT_MS)


def messages(page: Page, kind: str) -> list[dict[str, Any]]:
    """The messages of type `kind` among the last 50 the page received, oldest first."""
    found: list[dict[str, Any]] = page.evaluate(
        "kind => window.vbank.messages.filter(m => m.type === kind)", kind)
    return found


def wait_message(page: Page, kind: str, count: int = 1) -> dict[str, Any]:
    """Wait until `count` messages of type `kind` have arrived; returns the newest."""
    page.wait_for_function(
        "([kind, count]) => window.vbank.messages.filter(m => m.type === kind).length >= count",
        arg=[kind, count], timeout=TIMEOUT_MS)
    return messages(page, kind)[-1]


def wait_remote_video(page: Page, more_than: int = 0) -> None:
    """Wait until the page has rendered FRAMES remote video frames beyond `more_than`."""
    page.wait_for_function(
        "n => window.vbank.remoteFrames >= n && window.vbank.remoteWidth > 0",
        arg=more_than + FRAMES, timeout=TIMEOUT_MS)


def join_queue(customer: Page, service: str, language: str = "en") -> dict[str, Any]:
    customer.get_by_test_id(f"service-{service}").click()
    customer.get_by_test_id(f"language-{language}").check()
    customer.get_by_test_id("join").click()
    return wait_message(customer, "queued")


def go_available(teller: Page) -> None:
    teller.get_by_test_id("status").select_option("available")
    teller.wait_for_function(
        "() => window.vbank.messages.some(m => m.type === 'teller' && m.status === 'available')",
        timeout=TIMEOUT_MS)


def accept_next(teller: Page) -> dict[str, Any]:
    """Click Accept until paired. Admission control may answer `busy` while the box is loaded
    (browsers starting on 2 cores); like a teller, click again a moment later."""
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while True:
        errors = len(messages(teller, "error"))
        expect(teller.get_by_test_id("accept")).to_be_enabled()
        teller.get_by_test_id("accept").click()
        teller.wait_for_function(
            """n => window.vbank.messages.some(m => m.type === 'paired')
                   || window.vbank.messages.filter(m => m.type === 'error').length > n""",
            arg=errors, timeout=TIMEOUT_MS)
        paired = messages(teller, "paired")
        if paired:
            return paired[-1]
        refusal = messages(teller, "error")[-1]
        assert refusal["code"] == "busy" and time.monotonic() < deadline, refusal
        teller.wait_for_timeout(1000)


def call_between(person: Callable[[str, str], Person], customer: str,
                 teller: str, language: str = "en") -> tuple[Person, Person, str]:
    """`customer` joins loan signing in `language`, `teller` accepts; returns once both see
    each other."""
    c = person(customer, "/")
    queued = join_queue(c.page, "loan_signing", language)
    assert queued["position"] == 1 and queued["language"] == language
    expect(c.page.get_by_test_id("state")).to_contain_text("in the queue", timeout=TIMEOUT_MS)
    expect(c.page.get_by_test_id("position")).to_have_text("1")

    t = person(teller, "/teller")
    go_available(t.page)
    paired = accept_next(t.page)
    assert paired["session_id"] == queued["session_id"]
    assert paired["peer"]["username"] == customer
    expect(t.page.get_by_test_id("customer-name")).to_have_text(paired["peer"]["name"])
    expect(t.page.get_by_test_id("customer-language")).to_contain_text(
        {"en": "English", "zh": "中文"}[language])

    for page in (c.page, t.page):
        wait_remote_video(page)
        wait_state(page, "in_call")
    assert vbank(c.page, "pcState") == "connected"
    assert vbank(t.page, "pcState") == "connected"
    return c, t, queued["session_id"]


def test_customer_and_teller_hold_a_call(person: Callable[[str, str], Person]) -> None:
    # a customer who chose Chinese on the page: the teller is shown it
    alice, tina, session_id = call_between(person, "alice", "tina", language="zh")
    assert vbank(alice.page, "sessionId") == vbank(tina.page, "sessionId") == session_id
    expect(alice.page.get_by_test_id("state")).to_have_text("In call · 通话中")

    # Video keeps flowing both ways, not just a first burst.
    for page in (alice.page, tina.page):
        wait_remote_video(page, more_than=vbank(page, "remoteFrames"))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    alice.page.screenshot(path=str(ARTIFACTS / "customer-in-call.png"))
    tina.page.screenshot(path=str(ARTIFACTS / "teller-in-call.png"))

    tina.page.get_by_test_id("end-outcome").select_option("completed")
    tina.page.get_by_test_id("end").click()

    ended = wait_message(alice.page, "ended")
    assert ended["session_id"] == session_id
    assert ended["outcome"] == "completed"
    assert ended["reference"]
    wait_state(alice.page, "ended")
    expect(alice.page.get_by_test_id("state")).to_contain_text("Call ended")
    expect(alice.page.get_by_test_id("reference")).to_have_text(ended["reference"])
    assert wait_message(tina.page, "ended")["reference"] == ended["reference"]
    alice.page.screenshot(path=str(ARTIFACTS / "customer-ended.png"))


def test_teller_browser_closing_requeues_customer_to_next_teller(
        person: Callable[[str, str], Person]) -> None:
    alice, tina, session_id = call_between(person, "alice", "tina")

    tina.close()

    requeued = wait_message(alice.page, "requeued")
    assert requeued["session_id"] == session_id
    assert requeued["position"] == 1
    wait_state(alice.page, "requeued")
    expect(alice.page.get_by_test_id("state")).to_contain_text("you are first in line")
    expect(alice.page.get_by_test_id("position")).to_have_text("1")
    frames_before_tom = vbank(alice.page, "remoteFrames")

    tom = person("tom", "/teller")
    go_available(tom.page)
    paired = accept_next(tom.page)
    assert paired["session_id"] == session_id
    again = wait_message(alice.page, "paired", count=2)
    assert again["session_id"] == session_id
    assert again["peer"]["name"] == wait_message(tom.page, "welcome")["user"]["display_name"]

    wait_remote_video(tom.page)
    wait_remote_video(alice.page, more_than=frames_before_tom)
    wait_state(alice.page, "in_call")
    wait_state(tom.page, "in_call")
    assert vbank(alice.page, "sessionId") == vbank(tom.page, "sessionId") == session_id


def test_customer_reload_mid_call_resumes_the_same_session(
        person: Callable[[str, str], Person]) -> None:
    alice, tina, session_id = call_between(person, "alice", "tina")
    teller_frames = vbank(tina.page, "remoteFrames")

    alice.page.reload()

    welcome = wait_message(alice.page, "welcome")
    assert welcome["session"]["session_id"] == session_id
    assert welcome["session"]["state"] == "in_call"
    wait_remote_video(alice.page)  # the page offered again for the same session
    wait_state(alice.page, "in_call")
    assert vbank(alice.page, "sessionId") == session_id
    wait_remote_video(tina.page, more_than=teller_frames)  # and the teller sees her again
    wait_state(tina.page, "in_call")
