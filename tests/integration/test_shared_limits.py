"""The abuse limits with several nodes: counted in Redis, one allowance for the whole branch,
and each node on its own counts while Redis is away. Runs against the Redis on
127.0.0.1:6379 under a key prefix of its own; skipped, saying why, where none answers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from tests.integration.conftest import REDIS
from vbank.config import Settings
from vbank.limits import Limits

SETTINGS = Settings(login_failures_per_user=3, redemptions_per_minute=4, ws_per_address=3)


@pytest.fixture
async def nodes(prefix: str) -> AsyncIterator[tuple[Limits, Limits, Redis]]:
    """Two nodes' limits, both alive, over their own Redis connections."""
    clients = [Redis.from_url(REDIS, decode_responses=True) for _ in range(2)]
    both = []
    for i, client in enumerate(clients, start=1):
        limits = Limits(SETTINGS)
        limits.share(client, f"n{i}", prefix)
        await client.sadd(f"{prefix}nodes", f"n{i}")
        await client.set(f"{prefix}alive:n{i}", "1", ex=60)
        both.append(limits)
    yield both[0], both[1], clients[0]
    for client in clients:
        await client.aclose()


async def test_wrong_passwords_and_redemptions_count_on_every_node_together(
        nodes: tuple[Limits, Limits, Redis]) -> None:
    one, two, _ = nodes
    for node in (one, two, one):  # three wrong passwords, spread over the nodes
        assert (await node.login_attempt("Bob", "10.0.0.1")).wait is None
    wait = (await two.login_attempt("bob", "10.0.0.2")).wait  # locked on both, from anywhere
    assert wait is not None and 0 < wait <= SETTINGS.login_failure_window_s
    assert (await one.login_attempt("carol", "10.0.0.3")).wait is None
    takes = [await node.redemptions.take("alice") for node in (one, two) * 3]
    assert takes[:4] == [None] * 4  # four a minute, whichever node takes them
    assert all(w is not None and 0 < w <= 60 for w in takes[4:]), takes


async def test_logins_at_once_on_both_nodes_get_one_allowance_and_right_ones_give_it_back(
        nodes: tuple[Limits, Limits, Redis], prefix: str) -> None:
    one, two, redis = nodes
    attempts = await asyncio.gather(*(node.login_attempt("bob", f"10.0.0.{i}")
                                      for i, node in enumerate((one, two) * 8)))
    going = [a for a in attempts if a.wait is None]
    assert len(going) == SETTINGS.login_failures_per_user  # counted before any check
    await one.login_succeeded(going[0])  # a right password, whichever node forgives it
    assert await redis.zcard(f"{prefix}rl:login_user:bob") == len(going) - 1
    assert (await two.login_attempt("bob", "10.0.1.1")).wait is None
    assert (await one.login_attempt("bob", "10.0.1.1")).wait is not None


async def test_while_redis_is_away_a_right_password_is_forgiven_on_the_node() -> None:
    unreachable = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    limits = Limits(SETTINGS)
    limits.share(unreachable, "n1", "vbank:")
    try:
        right = await limits.login_attempt("bob", "10.0.0.1")
        await limits.login_succeeded(right)
        attempts = [await limits.login_attempt("bob", "10.0.0.1") for _ in range(4)]
        assert [a.wait is None for a in attempts] == [True, True, True, False]
    finally:
        await unreachable.aclose()


async def test_sockets_from_one_address_are_capped_across_the_nodes(
        nodes: tuple[Limits, Limits, Redis], prefix: str) -> None:
    one, two, redis = nodes
    assert await one.open_socket("10.0.0.1") and await one.open_socket("10.0.0.1")
    assert await two.open_socket("10.0.0.1")
    assert not await two.open_socket("10.0.0.1") and not await one.open_socket("10.0.0.1")
    assert await two.open_socket("10.0.0.2")  # another address has its own
    await one.close_socket("10.0.0.1")
    assert await two.open_socket("10.0.0.1")
    assert not await one.open_socket("10.0.0.1")
    # node 1 died: its sockets went with it, and its count no longer holds anyone back
    await redis.delete(f"{prefix}alive:n1")
    assert await two.open_socket("10.0.0.1")
    assert not await two.open_socket("10.0.0.1")  # its own two and this one


async def test_while_redis_is_away_each_node_still_counts_its_own() -> None:
    unreachable = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    limits = Limits(SETTINGS)
    limits.share(unreachable, "n1", "vbank:")
    try:
        takes = [await limits.redemptions.take("alice") for _ in range(5)]
        assert takes[:4] == [None] * 4 and takes[4] is not None
        assert all([await limits.open_socket("a") for _ in range(3)])
        assert not await limits.open_socket("a")
    finally:
        await unreachable.aclose()
