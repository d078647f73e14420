"""The queue in Redis (multi-node mode) against the in-memory queue it stands in for, and
the messages between nodes. Runs against the Redis on 127.0.0.1:6379 under a key prefix of
its own; skipped, saying why, where no Redis answers."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from tests.integration.conftest import REDIS
from vbank.cluster.node import Cluster
from vbank.cluster.reaper import Reaped, reap
from vbank.cluster.redisqueue import RedisQueue
from vbank.cluster.store import LocalQueue, QueueStore
from vbank.domain.queue import QueueEmpty, TellerNotAvailable, TellerStatus

SERVICES = {"loan_signing": 300.0, "wealth_risk_assessment": 300.0, "general_enquiry": 120.0}


@pytest.fixture
async def redis_queues(prefix: str) -> AsyncIterator[list[RedisQueue]]:
    """Two nodes' queues over their own Redis connections, one shared state."""
    clients = [Redis.from_url(REDIS, decode_responses=True) for _ in range(2)]
    yield [RedisQueue(c, f"node{i + 1}", SERVICES, prefix) for i, c in enumerate(clients)]
    for client in clients:
        await client.aclose()


async def _play(queue: QueueStore, seed: int) -> list[Any]:
    """A random day at the branch; returns what every command answered."""
    rng = random.Random(seed)
    tellers = {"t1": ["loan_signing"], "t2": ["loan_signing", "general_enquiry"],
               "t3": ["wealth_risk_assessment", "general_enquiry"]}
    for name, skills in tellers.items():
        await queue.set_teller(name, TellerStatus.AVAILABLE, skills)
    seen: list[Any] = []
    waiting: list[str] = []
    serving: dict[str, Any] = {}
    for step in range(120):
        now = 1000.0 + step  # both queues stamp the same arrival times
        roll = rng.random()
        if roll < 0.45:
            sid = f"s{step:03d}"
            ticket = await queue.enqueue(sid, f"c{step}", rng.choice(list(SERVICES)),
                                         rng.choice([0, 0, 0, 1, 2]), now)
            waiting.append(ticket.session_id)
            seen.append(("joined", sid, await queue.position(sid)))
        elif roll < 0.75:
            teller = rng.choice(list(tellers))
            try:
                got = await queue.accept(teller, now)
            except (QueueEmpty, TellerNotAvailable) as exc:
                seen.append(("accept", teller, type(exc).__name__))
                continue
            serving[teller] = got.ticket
            waiting.remove(got.ticket.session_id)
            seen.append(("accept", teller, got.ticket.session_id, got.waited_s))
        elif roll < 0.85 and serving:
            teller = rng.choice(sorted(serving))
            ticket = serving.pop(teller)
            if rng.random() < 0.5:  # the teller dropped: the customer goes back first
                again = await queue.requeue_at_head(ticket)
                waiting.append(again.session_id)
            await queue.release(teller)
            seen.append(("released", teller))
        elif roll < 0.92 and waiting:
            sid = rng.choice(waiting)
            waiting.remove(sid)
            gone = await queue.remove(sid)
            seen.append(("left", sid, gone.service if gone else None))
        else:
            teller = rng.choice(list(tellers))
            status = rng.choice(list(TellerStatus))
            after = await queue.set_teller(teller, status)
            seen.append(("status", teller, after.status.value, after.session_id))
        seen.append(("lengths", await queue.lengths()))
    for service in SERVICES:
        seen.append(("waiting", service, [t.session_id for t in await queue.waiting(service)]))
    return seen


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_the_redis_queue_serves_in_the_same_order_as_the_in_memory_one(
        redis_queues: list[RedisQueue], seed: int) -> None:
    expected = await _play(LocalQueue(SERVICES), seed)
    assert await _play(redis_queues[0], seed) == expected
    assert any(entry[0] == "accept" and len(entry) == 4 for entry in expected)  # not all refusals


async def test_tellers_on_two_nodes_never_get_the_same_customer(
        redis_queues: list[RedisQueue]) -> None:
    one, two = redis_queues
    for i in range(60):
        await one.enqueue(f"s{i}", f"c{i}", "general_enquiry", i % 3, 1000.0 + i)
    tellers = [(node, f"t{n}") for n, node in enumerate([one, two] * 5)]
    for node, name in tellers:
        await node.set_teller(name, TellerStatus.AVAILABLE, ["general_enquiry"])

    async def serve(node: RedisQueue, name: str) -> list[str]:
        got = []
        while True:
            try:
                got.append((await node.accept(name, 2000.0)).ticket.session_id)
            except QueueEmpty:
                return got
            await node.release(name)

    results = await asyncio.gather(*(serve(node, name) for node, name in tellers))
    served = [sid for batch in results for sid in batch]
    assert sorted(served) == sorted(f"s{i}" for i in range(60))  # each once, none lost
    assert all(results), "every teller, on either node, took customers"


async def test_a_teller_who_is_away_or_in_a_call_is_given_nobody(
        redis_queues: list[RedisQueue]) -> None:
    one, two = redis_queues
    await one.enqueue("s1", "c1", "loan_signing", 0, 1.0)
    await one.enqueue("s2", "c2", "loan_signing", 0, 2.0)
    await two.set_teller("t", TellerStatus.AWAY, ["loan_signing"])
    with pytest.raises(TellerNotAvailable):
        await one.accept("t", 3.0)
    await two.set_teller("t", TellerStatus.AVAILABLE)
    got = await one.accept("t", 3.0)
    assert got.ticket.session_id == "s1" and got.ticket.node == "node1"
    assert got.waited_s == 2.0
    again = await two.set_teller("t", TellerStatus.AVAILABLE)
    assert (again.status, again.session_id) == (TellerStatus.BUSY, "s1")  # busy until it ends
    await one.release("t", "s-other")  # another call's end does not free them
    assert (await one.teller("t")).status is TellerStatus.BUSY  # type: ignore[union-attr]
    await one.release("t", "s1")
    assert (await two.teller("t")).status is TellerStatus.AVAILABLE  # type: ignore[union-attr]
    assert (await two.remove_teller("t")) is not None
    assert await one.tellers() == []
    assert await one.lengths() == {"loan_signing": 1, "wealth_risk_assessment": 0,
                                   "general_enquiry": 0}


async def test_nodes_reach_people_signed_in_on_another_node_and_notice_redis_emptied(
        prefix: str) -> None:
    heard: dict[str, list[tuple[str, dict[str, Any]]]] = {"a": [], "b": []}
    resets = {"a": 0, "b": 0}
    nodes = {name: Cluster(REDIS, name, prefix) for name in heard}

    def handler(name: str) -> Any:
        async def handle(kind: str, payload: dict[str, Any]) -> dict[str, Any] | None:
            if kind == "ping":
                return {"pong": name, "echo": payload["n"]}
            heard[name].append((kind, payload))
            return None
        return handle

    def on_reset(name: str) -> Any:
        async def reset() -> None:
            resets[name] += 1
        return reset

    def on_dead(name: str) -> Any:
        async def dead(node: str) -> None:
            died[name].append(node)
        return dead

    died: dict[str, list[str]] = {"a": [], "b": []}
    for name, node in nodes.items():
        await node.start(handler(name), on_reset(name), on_dead(name))
    assert died == {"a": ["a"], "b": ["b"]}  # each first clears what its last run left
    try:
        await nodes["b"].arrived("bob")
        await nodes["a"].deliver("bob", {"type": "hello"})
        await nodes["a"].deliver("nobody", {"type": "lost"})
        await nodes["a"].broadcast("queue_changed", service="loan_signing")
        await nodes["b"].host("s1", "bob")
        assert await nodes["a"].session_of("bob") == "s1"
        await nodes["a"].tell_home("s1", "teller_gone", session_id="s1", teller="t")
        for _ in range(50):
            if len(heard["b"]) >= 3:
                break
            await asyncio.sleep(0.05)
        # its inbox in the order sent; the broadcast on the shared channel
        assert [m for m in heard["b"] if m[0] != "queue_changed"] == [
            ("deliver", {"to": "bob", "message": {"type": "hello"}}),
            ("teller_gone", {"session_id": "s1", "teller": "t"})]
        assert ("queue_changed", {"service": "loan_signing"}) in heard["b"]
        assert heard["a"] == []  # its own broadcast is not played back to it
        # a question to another node gets what its handler returned; to none, nothing
        assert await nodes["a"].ask("b", "ping", n=7) == {"pong": "b", "echo": 7}
        assert await nodes["a"].ask("c", "ping", timeout=0.3, n=8) is None
        # b's connections to Redis are cut: what is sent meanwhile waits in its inbox
        admin = Redis.from_url(REDIS, decode_responses=True)
        clients = await admin.client_list()
        await asyncio.gather(*(admin.client_kill_filter(_id=c["id"]) for c in clients
                               if c.get("name") == "vbank-b"))
        await admin.aclose()
        await nodes["a"].tell("b", "teller_gone", session_id="s2", teller="t")
        for _ in range(50):
            if len(heard["b"]) >= 4:
                break
            await asyncio.sleep(0.1)
        assert heard["b"][-1] == ("teller_gone", {"session_id": "s2", "teller": "t"})
        await nodes["b"].departed("bob")
        await nodes["a"].deliver("bob", {"type": "after"})
        # Redis emptied (as by a restart without persistence): every node puts its part back
        await nodes["a"].redis.delete(f"{prefix}epoch")
        for _ in range(60):
            if all(resets.values()):
                break
            await asyncio.sleep(0.1)
        assert resets == {"a": 1, "b": 1}
        assert sorted(await nodes["a"].nodes()) == ["a", "b"]
        await asyncio.sleep(0.2)
        assert len(heard["b"]) == 4  # nothing more arrived for bob once he left
        # b's liveness lapsed (it could not reach Redis for its timeout): when it beats
        # again it finds out, and puts its part back in case the others took it out
        await nodes["b"].redis.delete(f"{prefix}alive:b")
        for _ in range(60):
            if resets["b"] == 2:
                break
            await asyncio.sleep(0.1)
        assert resets == {"a": 1, "b": 2}
    finally:
        for node in nodes.values():
            await node.stop()


async def test_a_node_stops_even_when_a_task_of_its_will_not(
        prefix: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr("vbank.cluster.node.STOP_S", 0.2)
    node = Cluster(REDIS, "a", prefix)

    async def ignore(_kind: str, _payload: dict[str, Any]) -> None:
        return None

    async def no_reset() -> None:
        return None

    async def no_death(_node: str) -> None:
        return None

    await node.start(ignore, no_reset, no_death)
    released = asyncio.Event()

    async def stubborn() -> None:  # as a Redis read that swallows its cancellation
        while not released.is_set():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(3600)

    task = asyncio.create_task(stubborn())
    node._tasks.append(task)
    await node.stop()  # returns, and says what it left behind
    assert "did not stop" in caplog.text
    # its goodbye was said: the other nodes no longer count it
    admin = Redis.from_url(REDIS, decode_responses=True)
    assert not await admin.sismember(f"{prefix}nodes", "a")
    await admin.aclose()
    released.set()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def _crash(node: Cluster) -> None:
    """The node stops as if killed: no goodbye, its keys stay until they expire."""
    for task in node._tasks:
        task.cancel()
    await asyncio.gather(*node._tasks, return_exceptions=True)
    await node.redis.aclose()


async def test_a_node_that_stops_saying_it_is_alive_is_taken_out(prefix: str) -> None:
    a, b = (Cluster(REDIS, name, prefix, timeout_s=2) for name in "ab")
    qa, qb = (RedisQueue(n.redis, n.node, SERVICES, prefix) for n in (a, b))
    reaped: list[Reaped] = []

    async def nothing(*_: Any) -> None:
        return None

    async def a_reaps(node: str) -> None:
        reaped.append(await reap(qa, a, node, list(SERVICES)))

    await a.start(nothing, nothing, a_reaps)
    await b.start(nothing, nothing, nothing)
    assert reaped == [Reaped("a")]  # a's own last run left nothing
    reaped.clear()
    await qb.enqueue("s3", "c3", "loan_signing", 0, 1.0)
    await qa.enqueue("s4", "c4", "loan_signing", 0, 2.0)
    await qb.enqueue("s1", "c1", "loan_signing", 0, 3.0)  # b's customer, ahead of a's
    await qa.enqueue("s2", "c2", "loan_signing", 0, 4.0)
    await qa.set_teller("ta", TellerStatus.AVAILABLE, ["loan_signing"])
    assert (await qa.accept("ta", 5.0)).ticket.session_id == "s3"  # a call hosted on b
    await b.host("s3", "c3")
    await qb.set_teller("tb2", TellerStatus.AVAILABLE, ["loan_signing"])
    assert (await qb.accept("tb2", 5.0)).ticket.session_id == "s4"  # b's teller, a's call
    await a.host("s4", "c4")
    await qb.set_teller("tb", TellerStatus.BUSY, ["general_enquiry"])
    await b.arrived("bob")
    await a.arrived("alice")

    await _crash(b)
    for _ in range(100):  # its key lasts 2 s; a looks every second
        if reaped:
            break
        await asyncio.sleep(0.1)
    try:
        assert len(reaped) == 1
        done = reaped[0]
        assert done.node == "b"
        assert [t.session_id for t in done.tickets] == ["s1"]
        assert [(t.teller_id, t.session_id) for t in done.tellers] == [("tb", None),
                                                                        ("tb2", "s4")]
        assert done.calls == [("ta", "s3")]
        assert (done.people, done.sessions) == (["bob"], 1)
        # what is left is a's, and works: ta is free and takes a's customer, not b's ghost
        assert [t.session_id for t in await qa.waiting("loan_signing")] == ["s2"]
        assert [t.teller_id for t in await qa.tellers()] == ["ta"]
        ta = await qa.teller("ta")
        assert ta is not None and (ta.status, ta.session_id) == (TellerStatus.AVAILABLE, None)
        assert (await qa.accept("ta", 6.0)).ticket.session_id == "s2"
        assert await a.homes() == {"s4": "a"}
        assert (await a.session_of("c3"), await a.session_of("c4")) == (None, "s4")
        assert await a.nodes() == ["a"]
        assert (await a.where_is("alice"), await a.where_is("bob")) == ("a", None)
        await asyncio.sleep(1.5)
        assert len(reaped) == 1  # once
    finally:
        await a.stop()
