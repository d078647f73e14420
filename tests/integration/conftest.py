"""Fixtures: a real ``vbank serve`` process, headless participants, VP8 test video, a key
prefix of a test's own in the machine's Redis."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from vbank.bench.mall import postgres_database, postgres_unreachable
from vbank.config import async_url
from vbank.rtc.ice import restrict_host_addresses
from vbank.rtc.peer import encode_vp8_loop
from vbank.serverproc import ServerProcess, start_server
from vbank.store.db import upgrade


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


#: the machine's Redis, for the tests of several nodes (skipped where none answers)
REDIS = "redis://127.0.0.1:6379/0"


async def _reachable() -> str | None:
    client = Redis.from_url(REDIS, socket_connect_timeout=2)
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        return f"Redis is not reachable at {REDIS}: {exc!r}"
    finally:
        await client.aclose()
    return None


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    """A key prefix of the test's own; its keys are deleted after it."""
    why = await _reachable()
    if why:
        pytest.skip(why)
    name = f"vbanktest:{secrets.token_hex(4)}:"
    yield name
    client = Redis.from_url(REDIS)
    keys = [k async for k in client.scan_iter(f"{name}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated database of the test's own, on each backend: its async URL (the
    PostgreSQL case is skipped only where no PostgreSQL runs)."""
    if request.param == "sqlite":
        url = async_url(f"sqlite:///{tmp_path / 'vbank.db'}")
        upgrade(url)
        yield url
        return
    why = postgres_unreachable()
    if why is not None:
        pytest.skip(why)
    with postgres_database(f"vbank_{request.node.module.__name__.rsplit('.', 1)[-1]}") as plain:
        upgrade(async_url(plain))
        yield async_url(plain)
