"""A browser that hides its addresses behind mDNS names still reaches the server.

Chromium offers ``<uuid>.local`` candidates instead of its IPs while a page has no camera
or microphone permission. aioice cannot resolve them here; the call must still connect
(the server learns the browser as a peer-reflexive candidate when its checks arrive).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.e2e.browsers import CHROMIUM_ARGS, Person
from tests.e2e.test_browser_call import accept_next, go_available, join_queue, wait_remote_video

pytestmark = pytest.mark.e2e

# No fake devices and no granted permission: no camera, and the addresses stay hidden.
PRIVATE_BROWSER = [a for a in CHROMIUM_ARGS if "fake" not in a]


def test_customer_without_camera_behind_mdns_sees_the_teller(
        person: Callable[..., Person]) -> None:
    customer = person("alice", "/", PRIVATE_BROWSER)
    teller = person("tina", "/teller")
    join_queue(customer.page, "general_enquiry")
    go_available(teller.page)
    accept_next(teller.page)
    wait_remote_video(customer.page)
    offered = customer.page.evaluate("window.vbank.offeredCandidates")
    assert offered and all(address.endswith(".local") for address in offered), offered
    assert customer.page.evaluate("window.vbank.pcState") == "connected"
