"""Two ``vbank serve`` nodes on loopback sharing PostgreSQL, Redis and a data directory.

A customer on node 1 is served by a teller signed in on node 2 (the shipped two-node
scenario, real speech over real WebRTC); the mall's race split across both nodes sells
exactly the stock; Redis restarted empty loses nobody: each node puts its waiting customers
back from the database, in their order, and they are served; a node killed is taken out of
the shared queues by the other, which frees its teller in the dead node's call, and started
again it closes its sessions as interrupted.

The nodes use a Redis server of the test's own (``redis-server`` on a free port, no
persistence), so that restarting it disturbs nothing else on the machine. Skipped, saying
why, where PostgreSQL or ``redis-server`` is absent.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.test_mall_race import (
    PRICE,
    START_POINTS,
    assert_consistent,
    books_of,
    login,
    open_sale,
    redeem,
    stock_of,
)
from vbank.bench.mall import postgres_database, postgres_unreachable
from vbank.bench.queue_ws import Socket
from vbank.headless import Participant
from vbank.serverproc import ServerProcess, free_port, start_server

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "scenes" / "scenarios" / "multinode" / "signing_two_nodes.yaml"


class RedisServer:
    """A private, memory-only ``redis-server`` that a test may stop and start again."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True,
                             check=False).stdout.strip() != b"PONG":
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


@dataclass
class Nodes:
    one: ServerProcess
    two: ServerProcess
    redis: RedisServer
    database: str
    data: Path
    options: tuple[str, ...]
    env: dict[str, str]


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nodes]:
    why = postgres_unreachable()
    if why:
        pytest.skip(why)
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        pytest.skip("redis-server is not installed (Debian package redis-server)")
    redis = RedisServer(tmp_path_factory.mktemp("redis"))
    redis.start()
    data = tmp_path_factory.mktemp("shared") / "data"  # recordings and keys: both nodes'
    env = {"VBANK_SECRET": secrets.token_urlsafe(32), "VBANK_DIGITAL_HUMAN": "true",
           "VBANK_TEST_MODE": "true", "VBANK_MEDIA_WORKERS": "1",
           "VBANK_NODE_TIMEOUT_S": "4", "VBANK_RECONNECT_GRACE_S": "6"}
    try:
        with postgres_database("vbank_nodes") as url:
            common = ("--db", url, "--redis", redis.url)
            one = start_server(data, *common, "--node", "n1", env=env, timeout=300)
            try:  # one after the other: the first migrates the database
                two = start_server(data, *common, "--node", "n2", env=env, timeout=300)
                try:
                    yield Nodes(one, two, redis, url, data, common, env)
                finally:
                    two.stop()
            finally:
                one.stop()
    finally:
        redis.kill()


def test_a_customer_on_node_one_is_served_by_a_teller_signed_in_on_node_two(
        nodes: Nodes, tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "vbank", "scenario", "run", str(SCENARIO),
         "--server", nodes.one.url, "--server", nodes.two.url, "--admin", "admin:admin",
         "--json", str(tmp_path / "run.json")],
        capture_output=True, text=True, timeout=600, check=False,
        env={**os.environ, "VBANK_DIGITAL_HUMAN": "true"})
    print(run.stdout, run.stderr)
    if run.returncode != 0:  # the hosting node's log (its media worker's too) says why
        print("node 1:", *nodes.one.output[-120:], sep="\n")
    assert run.returncode == 0
    assert run.stdout.splitlines()[-1] == "1 passed, 0 failed"


async def test_the_mall_race_split_across_both_nodes_sells_exactly_the_stock(
        nodes: Nodes) -> None:
    stock, requests = 20, 60
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    async with httpx.AsyncClient(base_url=nodes.one.url, timeout=30, limits=limits) as one, \
            httpx.AsyncClient(base_url=nodes.two.url, timeout=30, limits=limits) as two:
        item, admin, tokens = await open_sale(one, stock, customers=12)
        # both nodes with their connections open, so that the race starts even on both
        await asyncio.gather(*(books_of(node, token, item) for token in tokens.values()
                               for node in (one, two)))
        names = list(tokens)
        who = [names[i % len(names)] for i in range(requests)]
        answers = await asyncio.gather(*(
            redeem(one if i % 2 else two, tokens[name], item, f"{item}-{i}")
            for i, name in enumerate(who)))
        statuses = Counter(r.status_code for r in answers)
        assert statuses == {201: stock, 409: requests - stock}, statuses
        by_node = Counter(i % 2 for i, r in enumerate(answers) if r.status_code == 201)
        assert by_node[0] and by_node[1], "both nodes sold"
        assert await stock_of(two, admin, item) == 0
        won = Counter(name for name, r in zip(who, answers, strict=True)
                      if r.status_code == 201)
        for i, (name, token) in enumerate(tokens.items()):
            balance, orders = await books_of(one if i % 2 else two, token, item)
            assert len(orders) == won[name]
            assert balance == START_POINTS - PRICE * won[name], name
        await assert_consistent(two, admin)


async def _person(http: httpx.AsyncClient, admin: str, role: str, name: str) -> str:
    body: dict[str, object] = {"username": name, "password": "two-nodes-pw", "role": role,
                               "display_name": name.title()}
    if role == "teller":
        body["skills"] = ["general_enquiry"]
    r = await http.post("/api/v1/admin/users", json=body,
                        headers={"Authorization": f"Bearer {admin}"})
    assert r.status_code == 201, r.text
    return await login(http, name, "two-nodes-pw")


async def test_redis_restarted_empty_loses_nobody(nodes: Nodes) -> None:
    tag = secrets.token_hex(3)
    async with httpx.AsyncClient(base_url=nodes.one.url, timeout=30) as http:
        admin = await login(http, "admin", "admin")
        teller_token = await _person(http, admin, "teller", f"teller-{tag}")
        tokens = [await _person(http, admin, "customer", f"cust-{tag}-{i}") for i in range(3)]
    ws = [f"{node.url.replace('http', 'ws', 1)}/ws" for node in (nodes.one, nodes.two)]
    teller = await Socket.open(ws[1], teller_token)  # on node 2
    # busy, not away: the customers wait for a person instead of going to the digital human
    await teller.send({"type": "status", "status": "busy", "skills": ["general_enquiry"]})
    await teller.expect("teller")
    customers = []
    for i, token in enumerate(tokens):  # node 1, node 2, node 1: in this order
        customer = await Socket.open(ws[i % 2], token)
        await customer.send({"type": "join", "service": "general_enquiry"})
        queued = await customer.expect("queued")
        assert queued["position"] == i + 1
        customers.append((customer, queued["session_id"]))

    nodes.redis.kill()
    nodes.redis.start()  # empty: no persistence

    # each node notices within a few seconds and puts its part back, from the database
    order = [sid for _, sid in customers]
    async with httpx.AsyncClient(timeout=30) as http:
        headers = {"Authorization": f"Bearer {nodes.two.login('admin', 'admin')}"}
        deadline = time.monotonic() + 30
        waiting: list[str] = []
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                r = await http.get(f"{nodes.two.url}/api/v1/queues", headers=headers)
                if r.status_code == 200:
                    queue = next(s for s in r.json()["services"]
                                 if s["id"] == "general_enquiry")
                    waiting = [w["session_id"] for w in queue["waiting"]]
                    if len(waiting) == len(order):
                        break
            await asyncio.sleep(0.5)
        assert waiting == order  # everyone back, in the order they came
    # the teller's own node put the teller back; they serve all three, across both nodes
    await teller.send({"type": "status", "status": "available",
                       "skills": ["general_enquiry"]})
    await teller.expect("teller")
    for customer, sid in customers:
        await teller.send({"type": "accept"})
        paired = await teller.expect("paired", "error", timeout=30)
        assert paired["type"] == "paired" and paired["session_id"] == sid, paired
        assert (await customer.expect("paired", timeout=30))["peer"]["role"] == "teller"
        await teller.send({"type": "end", "outcome": "completed"})
        ended = await customer.expect("ended", timeout=30)
        assert ended["outcome"] == "completed"
        await teller.expect("ended", timeout=30)
    for customer, _ in customers:
        await customer.close()
    await teller.close()


async def test_a_customer_who_reconnects_to_the_other_node_keeps_their_call(
        nodes: Nodes) -> None:
    tag = secrets.token_hex(3)
    async with httpx.AsyncClient(base_url=nodes.one.url, timeout=30) as http:
        admin = await login(http, "admin", "admin")
        await _person(http, admin, "teller", f"rt-{tag}")
        await _person(http, admin, "customer", f"rc-{tag}")
    teller = Participant(nodes.two.url, f"rt-{tag}", "two-nodes-pw")
    customer = Participant(nodes.one.url, f"rc-{tag}", "two-nodes-pw")
    again = Participant(nodes.two.url, f"rc-{tag}", "two-nodes-pw")
    try:
        await teller.connect()
        await teller.send({"type": "status", "status": "available",
                           "skills": ["general_enquiry"]})
        await teller.expect("teller")
        await customer.connect()
        await customer.send({"type": "join", "service": "general_enquiry"})
        sid = (await customer.expect("queued"))["session_id"]  # hosted by node 1
        await teller.send({"type": "accept"})
        await teller.expect("paired", timeout=30, session_id=sid)
        await customer.start_media(sid, None)
        await teller.start_media(sid, None)

        await customer.close()  # the customer's network drops ...
        await teller.expect("peer", timeout=30, state="reconnecting")
        welcome = await again.connect()  # ... and their page comes back through node 2
        assert welcome["session"]["session_id"] == sid
        assert welcome["session"]["state"] == "in_call"
        await again.start_media(sid, None)  # the offer is answered by node 1, as is the media
        await asyncio.sleep(8)  # past the grace period (6 s): the call did not end
        assert not [m for m in teller.messages if m["type"] == "ended"]
        await again.send({"type": "leave"})  # carried out by node 1 too
        ended = await teller.expect("ended", timeout=30, session_id=sid)
        assert ended["outcome"] == "customer_left"
        await again.expect("ended", timeout=30, session_id=sid)
    finally:
        for person in (again, customer, teller):
            await person.close()


async def _queue(node: ServerProcess, admin: str, service: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=node.url, timeout=30) as http:
        r = await http.get("/api/v1/queues", headers={"Authorization": f"Bearer {admin}"})
        r.raise_for_status()
        body = r.json()
        queue = next(s for s in body["services"] if s["id"] == service)
        return {"waiting": [w["session_id"] for w in queue["waiting"]],
                "tellers": sorted(t["username"] for t in body["tellers"])}


async def test_a_node_killed_is_taken_out_and_its_teller_calls_freed(nodes: Nodes) -> None:
    """Last in this module: node 2 is killed (and started again under its name)."""
    tag = secrets.token_hex(3)
    async with httpx.AsyncClient(base_url=nodes.one.url, timeout=30) as http:
        admin = await login(http, "admin", "admin")
        t1_token, t2_token = [await _person(http, admin, "teller", f"t{i}-{tag}")
                              for i in (1, 2)]
        tokens = [await _person(http, admin, "customer", f"c{i}-{tag}") for i in range(3)]
    ws = [f"{node.url.replace('http', 'ws', 1)}/ws" for node in (nodes.one, nodes.two)]
    service = {"type": "status", "status": "busy", "skills": ["general_enquiry"]}
    t1 = await Socket.open(ws[0], t1_token)
    await t1.send(service)
    await t1.expect("teller")
    t2 = await Socket.open(ws[1], t2_token)  # signed in on the node that will die
    await t2.send(service)
    await t2.expect("teller")
    joined = []
    for token, at in zip(tokens, (1, 1, 0), strict=True):  # node 2, node 2, then node 1
        customer = await Socket.open(ws[at], token)
        await customer.send({"type": "join", "service": "general_enquiry"})
        joined.append((customer, (await customer.expect("queued"))["session_id"]))
    (_, in_call), (_, ghost), (survivor, waiting) = joined
    await t1.send({**service, "status": "available"})
    await t1.expect("teller")
    await t1.send({"type": "accept"})
    assert (await t1.expect("paired", timeout=30))["session_id"] == in_call  # hosted on 2
    before = await _queue(nodes.one, admin, "general_enquiry")
    assert before["waiting"] == [ghost, waiting]
    assert f"t2-{tag}" in before["tellers"]

    nodes.two.stop(signal.SIGKILL)
    ended = await t1.expect("ended", timeout=30)  # node 1 noticed within its timeout
    assert (ended["session_id"], ended["outcome"]) == (in_call, "node_lost")
    after = await _queue(nodes.one, admin, "general_enquiry")
    assert after["waiting"] == [waiting]  # node 2's customer is not a ghost at the head
    assert f"t2-{tag}" not in after["tellers"] and f"t1-{tag}" in after["tellers"]
    await t1.send({"type": "accept"})
    paired = await t1.expect("paired", "error", timeout=30)
    assert paired["type"] == "paired" and paired["session_id"] == waiting, paired
    assert (await survivor.expect("paired", timeout=30))["peer"]["role"] == "teller"
    await t1.send({"type": "end", "outcome": "completed"})
    await survivor.expect("ended", timeout=30)

    # node 2 starts again under its name: its sessions are closed as interrupted
    again = start_server(nodes.data, *nodes.options, "--node", "n2",
                         env={**nodes.env, "VBANK_DIGITAL_HUMAN": "false"}, timeout=300)
    try:
        supervisor = again.login("sam", "sam")
        async with httpx.AsyncClient(base_url=again.url, timeout=30) as http:
            for sid in (in_call, ghost):
                r = await http.get(f"/api/v1/sessions/{sid}",
                                   headers={"Authorization": f"Bearer {supervisor}"})
                assert r.status_code == 200, r.text
                assert (r.json()["state"], r.json()["outcome"]) == ("ended", "interrupted")
        assert (await _queue(again, admin, "general_enquiry"))["waiting"] == []
    finally:
        again.stop()
        for sock in (t1, t2, *(c for c, _ in joined)):
            with contextlib.suppress(Exception):
                await sock.close()
