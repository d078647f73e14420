"""For every test: WebRTC peers a failed test left open are closed."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from vbank.rtc.peer import HeadlessPeer


@pytest.fixture(autouse=True)
async def _peers_closed() -> AsyncIterator[None]:
    """A test that fails half way through a call leaves its peers open; aiortc's decoder
    threads of an open peer never end, and the test run would never exit."""
    yield
    for peer in HeadlessPeer.left_open(asyncio.get_running_loop()):
        with contextlib.suppress(Exception):
            await peer.close()
