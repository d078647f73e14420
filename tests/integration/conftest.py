"""Fixtures: a real ``vbank serve`` process, headless participants, VP8 test video."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from vbank.rtc.ice import restrict_host_addresses
from vbank.rtc.peer import encode_vp8_loop
from vbank.serverproc import ServerProcess, start_server


@pytest.fixture(scope="session", autouse=True)
def loopback_ice() -> None:
    # The test's own peers offer loopback, like the server (aioice skips it by default).
    restrict_host_addresses(["127.0.0.1"])


@pytest.fixture(scope="session")
def video() -> list[bytes]:
    return encode_vp8_loop(640, 480, 15, 30)


@pytest.fixture
def server(tmp_path) -> Iterator[ServerProcess]:  # type: ignore[no-untyped-def]
    proc = start_server(tmp_path / "data", env={"VBANK_RECONNECT_GRACE_S": "3"})
    yield proc
    proc.stop()
