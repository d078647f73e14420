"""``vbank bench queue --ws``: the queue through real WebSockets, many customers and tellers.

N customers and M tellers sign in to one server and open the signaling socket; the customers
join queues all at once, the tellers accept, hold each call for ``--handle-s`` and end it,
and accept again until everyone has been served. Reported: the queue latency each customer
saw (join sent → ``paired`` received; with few tellers mostly the wait for a free one), the
time the branch takes to assign (a teller's ``accept`` sent → ``paired`` received), and
the tickets lost (a customer never paired) or
assigned twice (a session paired to two tellers, or a customer paired twice) — both must be
zero. Without ``--server`` it starts its own ``vbank serve`` with the per-address limits
raised (every simulated person comes from one address).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import secrets
import statistics
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import websockets

from vbank.bench.report import report
from vbank.domain.services import SERVICES

#: the server limits a load from one address needs
LOAD_ENV = {"VBANK_WS_PER_ADDRESS": "100000", "VBANK_LOGINS_PER_ADDRESS_PER_MINUTE": "100000"}
#: requests to the server in flight at once while setting up (argon2 takes tens of ms each)
SETUP_CONCURRENCY = 8
PASSWORD = "load-test-password"


@dataclass
class LoadResult:
    customers: int
    tellers: int
    latencies_s: list[float] = field(default_factory=list)  # join → paired, per customer
    accepts_s: list[float] = field(default_factory=list)  # accept sent → paired, per call
    paired_customers: Counter[str] = field(default_factory=Counter)
    sessions_by_teller: dict[str, str] = field(default_factory=dict)  # session → teller
    double_assigned: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def lost(self) -> int:
        return self.customers - len(self.paired_customers)

    @property
    def twice(self) -> int:
        return len(self.double_assigned) + sum(1 for n in self.paired_customers.values()
                                               if n > 1)


class Socket:
    """One signed-in signaling socket and the messages it received."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._reader = asyncio.ensure_future(self._read())

    @classmethod
    async def open(cls, url: str, token: str) -> Socket:
        ws = await websockets.connect(url, max_size=None, open_timeout=60)
        await ws.send(json.dumps({"type": "auth", "token": token}))
        socket = cls(ws)
        await socket.expect("welcome")
        return socket

    async def _read(self) -> None:
        try:
            async for text in self.ws:
                await self.inbox.put(json.loads(text))
        except websockets.ConnectionClosed:
            pass

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(message))

    async def expect(self, *kinds: str, timeout: float = 120) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            message = await asyncio.wait_for(self.inbox.get(), max(0.01, deadline -
                                                                   time.monotonic()))
            if message.get("type") in kinds:
                return message

    async def close(self) -> None:
        self._reader.cancel()
        await self.ws.close()


async def _people(http: httpx.AsyncClient, admin: str, kind: str, count: int, tag: str
                  ) -> list[tuple[str, str]]:
    """Create ``count`` users of ``kind`` and sign them in: (username, token)."""
    gate = asyncio.Semaphore(SETUP_CONCURRENCY)

    async def one(i: int) -> tuple[str, str]:
        name = f"load-{tag}-{kind[0]}{i}"
        async with gate:
            body: dict[str, Any] = {"username": name, "password": PASSWORD, "role": kind,
                                    "display_name": f"Load {kind} {i}"}
            if kind == "teller":
                body["skills"] = sorted(SERVICES)
            r = await http.post("/api/v1/admin/users", json=body,
                                headers={"Authorization": f"Bearer {admin}"})
            r.raise_for_status()
            r = await http.post("/api/v1/auth/login",
                                json={"username": name, "password": PASSWORD})
            r.raise_for_status()
            return name, str(r.json()["access_token"])

    return list(await asyncio.gather(*(one(i) for i in range(count))))


async def run_load(server: str, customers: int, tellers: int, *, admin_user: str = "admin",
                   admin_password: str = "admin", handle_s: float = 0.2,
                   seed: int = 7) -> LoadResult:
    """Serve ``customers`` through ``tellers`` over real sockets; see the module's doc."""
    rng = random.Random(seed)
    result = LoadResult(customers, tellers)
    url = "ws" + server.removeprefix("http") + "/ws"
    tag = secrets.token_hex(3)
    async with httpx.AsyncClient(base_url=server, timeout=60) as http:
        r = await http.post("/api/v1/auth/login",
                            json={"username": admin_user, "password": admin_password})
        r.raise_for_status()
        admin = str(r.json()["access_token"])
        staff = await _people(http, admin, "teller", tellers, tag)
        clients = await _people(http, admin, "customer", customers, tag)
    teller_sockets = [await Socket.open(url, token) for _, token in staff]
    customer_sockets = [await Socket.open(url, token) for _, token in clients]
    served = asyncio.Event()

    async def customer(name: str, socket: Socket) -> None:
        await socket.send({"type": "join", "service": rng.choice(sorted(SERVICES))})
        joined = time.monotonic()
        reply = await socket.expect("queued", "error")
        if reply["type"] == "error":
            result.errors.append(f"{name}: join refused: {reply.get('message')}")
            return
        await socket.expect("paired")
        result.latencies_s.append(time.monotonic() - joined)
        result.paired_customers[name] += 1
        await socket.expect("ended")
        if len(result.paired_customers) == customers:
            served.set()

    async def teller(name: str, socket: Socket) -> None:
        await socket.send({"type": "status", "status": "available",
                           "skills": sorted(SERVICES)})
        while not served.is_set():
            asked = time.monotonic()
            await socket.send({"type": "accept"})
            reply = await socket.expect("paired", "error")
            if reply["type"] == "error":
                if reply.get("code") not in ("queue_empty", "busy", "rate_limited"):
                    result.errors.append(f"{name}: accept refused: {reply.get('message')}")
                # polling an empty queue runs into the socket's allowance of commands
                await asyncio.sleep(float(reply.get("retry_after_s", 0.05)))
                continue
            result.accepts_s.append(time.monotonic() - asked)
            session = str(reply["session_id"])
            if session in result.sessions_by_teller:
                result.double_assigned.append(session)
            result.sessions_by_teller[session] = name
            await asyncio.sleep(handle_s)
            await socket.send({"type": "end", "outcome": "completed"})
            await socket.expect("ended")

    start = time.monotonic()
    try:
        waiting = [asyncio.ensure_future(customer(n, s))
                   for (n, _), s in zip(clients, customer_sockets, strict=True)]
        working = [asyncio.ensure_future(teller(n, s))
                   for (n, _), s in zip(staff, teller_sockets, strict=True)]
        await asyncio.gather(*waiting)
        served.set()
        await asyncio.wait(working, timeout=30)
        for task in working:
            task.cancel()
    finally:
        result.elapsed_s = time.monotonic() - start
        await asyncio.gather(*(s.close() for s in teller_sockets + customer_sockets),
                             return_exceptions=True)
    return result


def figures(result: LoadResult) -> dict[str, Any]:
    lat = sorted(result.latencies_s)
    acc = sorted(result.accepts_s)

    def q(p: float, values: list[float] | None = None) -> float:
        v = lat if values is None else values
        return round(v[min(len(v) - 1, int(p * len(v)))] * 1000, 1) if v else 0.0

    return {"customers": result.customers, "tellers": result.tellers,
            "served": len(result.paired_customers), "lost": result.lost,
            "assigned_twice": result.twice, "errors": len(result.errors),
            "queue_latency_p50_ms": round(statistics.median(lat) * 1000, 1) if lat else 0.0,
            "queue_latency_p95_ms": q(0.95), "queue_latency_max_ms": q(1.0),
            "accept_p50_ms": q(0.5, acc), "accept_p95_ms": q(0.95, acc),
            "elapsed_s": round(result.elapsed_s, 2)}


def main(argv: list[str], json_out: Path | None) -> int:
    """``vbank bench queue --ws [--customers 200 --tellers 20 --handle-s 0.2 --server URL]``"""
    from vbank.serverproc import start_server

    parser = argparse.ArgumentParser(prog="vbank bench queue --ws")
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--tellers", type=int, default=20)
    parser.add_argument("--handle-s", type=float, default=0.2)
    parser.add_argument("--server", help="an already running server (default: start one)")
    parser.add_argument("--admin", default="admin:admin", help="USER:PASSWORD of an admin")
    args = parser.parse_args(argv)
    user, _, password = args.admin.partition(":")
    own = None
    server = args.server
    if server is None:
        own = start_server(Path(tempfile.mkdtemp(prefix="vbank-load-")) / "data", env=LOAD_ENV)
        server = own.url
    try:
        result = asyncio.run(run_load(server, args.customers, args.tellers,
                                      admin_user=user, admin_password=password,
                                      handle_s=args.handle_s))
    finally:
        if own is not None:
            own.stop()
    report("queue-ws", figures(result), json_out)
    return 0 if result.lost == 0 and result.twice == 0 and not result.errors else 1
