"""``vbank bench mall-race``: N concurrent redemptions of one item with stock S.

For each database (SQLite, PostgreSQL) a fresh ``vbank serve`` starts; an administrator adds
a fresh item with stock S and C customers with enough points for every redemption they will
try; then load generator processes fire N redemptions over HTTP/1.1 keep-alive connections,
K in flight at once, each with its own ``Idempotency-Key``. Figures: successes, out of stock,
other errors, oversell (must be 0), throughput and latency. Afterwards the books are checked
three ways: the item's stock over HTTP, every customer's orders and balance over HTTP
(balance = start − price × successes), and ``store.mall.consistency`` on the database once the
server has stopped.

The generators share the machine's cores with the server (and PostgreSQL): their CPU time is
reported next to the server's, with the load average before the run, and the throughput is a
lower bound. ``server_cpu_ms_per_request`` is the server's own cost, the steadiest figure on
a busy machine: one core serves at most 1000 / it requests a second.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import queue
import statistics
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psutil

from vbank.bench.report import report
from vbank.serverproc import start_server

POSTGRES = os.environ.get("VBANK_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
PRICE = 10  # the item's list price in points
PASSWORD = "mall-race-pw"


# --------------------------------------------------------------------------- PostgreSQL
def postgres_unreachable(maintenance_url: str = POSTGRES) -> str | None:
    """Why PostgreSQL cannot be used at ``maintenance_url``; None when it answers."""
    import asyncpg

    try:
        asyncio.run(_admin(maintenance_url, "SELECT 1"))
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        return f"PostgreSQL is not reachable at {maintenance_url}: {exc!r}"
    return None


@contextlib.contextmanager
def postgres_database(prefix: str, maintenance_url: str = POSTGRES) -> Iterator[str]:
    """A fresh database, dropped afterwards (even with clients left); yields its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    asyncio.run(_admin(maintenance_url, f'CREATE DATABASE "{name}"'))
    try:
        yield maintenance_url.rsplit("/", 1)[0] + "/" + name
    finally:
        asyncio.run(_admin(maintenance_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _admin(maintenance_url: str, statement: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(_plain(maintenance_url), timeout=5)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def _plain(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def consistency(database_url: str) -> list[str]:
    """``store.mall.consistency`` on a database no server is using."""
    from vbank.config import async_url
    from vbank.store.db import make_engine, sessionmaker
    from vbank.store.mall import consistency as check

    engine = make_engine(async_url(database_url))
    try:
        async with sessionmaker(engine)() as db:
            return await check(db)
    finally:
        await engine.dispose()


# --------------------------------------------------------------------------- HTTP/1.1
class Connection:
    """One keep-alive HTTP/1.1 connection: far cheaper per request than a full client,
    so that the generators are not what is measured."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 host: str) -> None:
        self.reader, self.writer, self.host = reader, writer, host

    @classmethod
    async def open(cls, url: str) -> Connection:
        parts = urlsplit(url)
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        return cls(reader, writer, parts.netloc)

    async def request(self, method: str, path: str, token: str, body: bytes = b"",
                      headers: str = "") -> tuple[int, dict[str, str], bytes]:
        head = (f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\n"
                f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n{headers}\r\n")
        self.writer.write(head.encode() + body)
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        fields = {k.strip().lower(): v.strip() for k, _, v in
                  (line.partition(":") for line in lines[1:] if line)}
        payload = await self.reader.readexactly(int(fields.get("content-length", "0")))
        return status, fields, payload

    def close(self) -> None:
        self.writer.close()


Job = tuple[int, str, str, bytes]  # request index, bearer token, Idempotency-Key, body
Outcome = tuple[int, int, float, float, str]  # index, status, sent, seconds, order/detail


async def fire(url: str, jobs: list[Job], connections: int,
               start: Any = None) -> tuple[list[Outcome], float, float]:
    """Send every job, ``connections`` at a time; waits on ``start`` (a barrier) once the
    connections are open. Returns the outcomes and when the first went and the last came."""
    conns = [await Connection.open(url) for _ in range(max(1, min(connections, len(jobs))))]
    pending = iter(jobs)
    outcomes: list[Outcome] = []

    async def worker(conn: Connection) -> None:
        for index, token, key, body in pending:
            t0 = time.monotonic()
            status, _, payload = await conn.request(
                "POST", "/api/v1/mall/redemptions", token, body,
                f"Idempotency-Key: {key}\r\n")
            elapsed = time.monotonic() - t0
            doc = json.loads(payload) if payload else {}
            outcomes.append((index, status, t0, elapsed,
                             doc.get("order_id", "") if status == 201 else
                             str(doc.get("detail", ""))))

    if start is not None:
        start.wait()  # every generator's connections are open: go together
    began = time.monotonic()
    await asyncio.gather(*(worker(c) for c in conns))
    ended = time.monotonic()
    for c in conns:
        c.close()
    return outcomes, began, ended


def _generator(url: str, jobs: list[Job], connections: int, start: Any, out: Any) -> None:
    """A load generator process: its outcomes, window and CPU seconds go to ``out``."""
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    cpu0 = time.process_time()
    outcomes, began, ended = asyncio.run(fire(url, jobs, connections, start))
    out.put((outcomes, began, ended, time.process_time() - cpu0))


# --------------------------------------------------------------------------- one race
def _setup(url: str, item_id: str, stock: int, customers: int,
           points: int) -> tuple[str, dict[str, str]]:
    """The item and the customers; returns the admin's token and each customer's."""
    with httpx.Client(base_url=url, timeout=60) as http:
        admin = http.post("/api/v1/auth/login",
                          json={"username": "admin", "password": "admin"}).json()["access_token"]
        auth = {"Authorization": f"Bearer {admin}"}
        http.post("/api/v1/admin/mall/items", headers=auth, json={
            "id": item_id, "name": "Race item", "points": PRICE, "stock": stock,
        }).raise_for_status()

    async def add_and_login(client: httpx.AsyncClient, name: str) -> tuple[str, str]:
        (await client.post("/api/v1/admin/users", headers=auth, json={
            "username": name, "password": PASSWORD, "role": "customer",
            "points": points})).raise_for_status()
        r = await client.post("/api/v1/auth/login",
                              json={"username": name, "password": PASSWORD})
        r.raise_for_status()
        return name, str(r.json()["access_token"])

    async def all_customers() -> dict[str, str]:
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            return dict(await asyncio.gather(*(add_and_login(client, f"racer{i}")
                                               for i in range(customers))))

    return admin, asyncio.run(all_customers())


def _books(url: str, admin: str, item_id: str,
           tokens: dict[str, str]) -> tuple[int, dict[str, dict[str, Any]]]:
    """The item's stock, and per customer: price, balance and placed orders of the item."""
    with httpx.Client(base_url=url, timeout=60) as http:
        items = http.get("/api/v1/mall/items",
                         headers={"Authorization": f"Bearer {admin}"}).json()
        stock = next(i["stock"] for i in items if i["id"] == item_id)
        books = {}
        for name, token in tokens.items():
            auth = {"Authorization": f"Bearer {token}"}
            price = next(i["price"] for i in http.get("/api/v1/mall/items", headers=auth).json()
                         if i["id"] == item_id)
            orders = [o for o in http.get("/api/v1/mall/redemptions", headers=auth).json()
                      if o["item_id"] == item_id and o["status"] == "placed"]
            books[name] = {"price": price, "orders": orders,
                           "balance": http.get("/api/v1/points", headers=auth).json()["balance"]}
    return stock, books


def race(database: str, db_url: str | None, args: argparse.Namespace) -> dict[str, Any]:
    """One database: server up, item and customers made, N redemptions fired, books checked."""
    with tempfile.TemporaryDirectory(prefix="vbank-mall-race-") as tmp:
        return _race(database, db_url, args, Path(tmp))


def _race(database: str, db_url: str | None, args: argparse.Namespace,
          data: Path) -> dict[str, Any]:
    per_customer = -(-args.requests // args.customers)
    points = PRICE * (per_customer + 1)
    server = start_server(data, *(["--db", db_url] if db_url else []),
                          env={"VBANK_MEDIA_WORKERS": "0", "VBANK_LOG": "WARNING"})
    item_id = f"race-{uuid.uuid4().hex[:8]}"
    try:
        admin, tokens = _setup(server.url, item_id, args.stock, args.customers, points)
        _, start_books = _books(server.url, admin, item_id, tokens)
        names = sorted(tokens)
        body = json.dumps({"item_id": item_id, "quantity": 1}).encode()
        jobs = [(i, tokens[names[i % len(names)]], f"{item_id}-{i}", body)
                for i in range(args.requests)]
        gens = max(1, args.generators)
        ctx = multiprocessing.get_context("spawn")
        barrier, out = ctx.Barrier(gens + 1), ctx.Queue()
        procs = [ctx.Process(target=_generator, args=(
            server.url, jobs[g::gens], args.concurrency // gens + (g < args.concurrency % gens),
            barrier, out)) for g in range(gens)]
        for p in procs:
            p.start()
        tree = psutil.Process(server.proc.pid)
        load = os.getloadavg()[0]
        barrier.wait()
        cpu0 = sum(tree.cpu_times()[:2])
        parts = _collect(procs, out)
        server_cpu = sum(tree.cpu_times()[:2]) - cpu0
        for p in procs:
            p.join(30)
        stock, books = _books(server.url, admin, item_id, tokens)
    finally:
        server.stop()
    problems = asyncio.run(consistency(db_url or f"sqlite:///{data / 'vbank.db'}"))
    return {**_figures(database, args, parts, server_cpu, stock, start_books, books, names,
                       problems), "load_average_1m_before": round(load, 2)}


def _collect(procs: list[Any], out: Any) -> list[Any]:
    """Every generator's report; a generator that died is an error, not a hang."""
    parts: list[Any] = []
    while len(parts) < len(procs):
        try:
            parts.append(out.get(timeout=1))
        except queue.Empty:
            if sum(1 for p in procs if p.exitcode is None) < len(procs) - len(parts):
                raise RuntimeError("a load generator died; see its traceback above") from None
    return parts


def _figures(database: str, args: argparse.Namespace, parts: list[Any], server_cpu: float,
             stock: int, start_books: dict[str, dict[str, Any]],
             books: dict[str, dict[str, Any]], names: list[str],
             problems: list[str]) -> dict[str, Any]:
    outcomes: list[Outcome] = [o for p in parts for o in p[0]]
    wall = max(p[2] for p in parts) - min(p[1] for p in parts)
    began = min(p[1] for p in parts)
    statuses = Counter(status for _, status, _, _, _ in outcomes)
    won = Counter(names[index % len(names)] for index, status, _, _, _ in outcomes
                  if status == 201)
    # the sale: from the first request to the last success's answer
    sale = max((sent + seconds for _, status, sent, seconds, _ in outcomes if status == 201),
               default=began) - began
    successes = statuses.pop(201, 0)
    out_of_stock = sum(1 for _, status, _, _, detail in outcomes
                       if status == 409 and "out of stock" in detail)
    statuses[409] -= out_of_stock
    placed = sum(len(b["orders"]) for b in books.values())
    balances_ok = all(
        books[n]["balance"] == start_books[n]["balance"] - start_books[n]["price"] * won[n]
        and len(books[n]["orders"]) == won[n] for n in names)
    latencies = sorted(seconds for _, _, _, seconds, _ in outcomes)
    commits = {o["created_at"] for b in books.values() for o in b["orders"]}
    return {
        "database": database,
        "requests": len(outcomes),
        "successes": successes,
        "out_of_stock": out_of_stock,
        "other_errors": {str(k): v for k, v in sorted(statuses.items()) if v},
        "oversell": max(0, successes - args.stock, args.stock - stock - successes,
                        placed - args.stock),
        "final_stock": stock,
        "stock_ok": stock == args.stock - successes == args.stock - placed and stock >= 0,
        "balances_ok": balances_ok,
        "consistency_problems": problems[:10],
        "wall_s": round(wall, 3),
        "requests_per_s": round(len(outcomes) / wall, 1),
        "redemptions_per_s": round(successes / wall, 1),
        "sold_out_after_s": round(sale, 3),
        "redemptions_per_s_until_sold_out": round(successes / sale, 1) if sale else None,
        "latency_p50_ms": round(statistics.median(latencies) * 1000, 1),
        "latency_p99_ms": round(latencies[min(len(latencies) - 1,
                                              int(0.99 * len(latencies)))] * 1000, 1),
        "batches_with_sales": len(commits),
        "server_cpu_percent": round(server_cpu / wall * 100, 1),
        # CPU time per request: what the server costs, whatever else runs on the machine
        "server_cpu_ms_per_request": round(server_cpu / len(outcomes) * 1000, 3),
        "generators_cpu_percent": round(sum(p[3] for p in parts) / wall * 100, 1),
    }


# --------------------------------------------------------------------------- the command
def _databases(choice: str, maintenance_url: str) -> Iterator[tuple[str, str | None]]:
    if choice in ("sqlite", "both"):
        yield "sqlite", None
    if choice in ("postgres", "both"):
        why = postgres_unreachable(maintenance_url)
        if why is not None:
            print(f"mall-race: skipping PostgreSQL: {why}", flush=True)
            return
        yield "postgresql", maintenance_url


def main(argv: list[str], json_out: Path | None) -> int:
    parser = argparse.ArgumentParser(prog="vbank bench mall-race")
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--requests", type=int, default=2000, help="redemptions fired (N)")
    parser.add_argument("--stock", type=int, default=500, help="the item's stock (S)")
    parser.add_argument("--customers", type=int, default=50,
                        help="customers the redemptions are spread over (C)")
    parser.add_argument("--concurrency", type=int, default=64,
                        help="HTTP requests in flight at once (K)")
    parser.add_argument("--generators", type=int, default=2,
                        help="load generator processes (they share this machine's cores)")
    parser.add_argument("--postgres", default=POSTGRES, metavar="URL",
                        help="a PostgreSQL database to connect to while creating and "
                             "dropping a fresh one per run")
    args = parser.parse_args(argv)
    runs = []
    for database, maintenance in _databases(args.db, args.postgres):
        if maintenance is None:
            runs.append(race(database, None, args))
        else:
            with postgres_database("vbank_bench", maintenance) as url:
                runs.append(race(database, url, args))
    for r in runs:
        print(json.dumps(r), flush=True)
    report("mall-race", {
        "requests": args.requests, "stock": args.stock, "customers": args.customers,
        "concurrency": args.concurrency, "generators": args.generators,
        "cpu_count": os.cpu_count(), "zero_oversell": all(r["oversell"] == 0 for r in runs),
        "books_ok": all(r["stock_ok"] and r["balances_ok"] and not r["consistency_problems"]
                        for r in runs),
        "databases": runs}, json_out)
    good = all(r["oversell"] == 0 and r["stock_ok"] and r["balances_ok"]
               and not r["consistency_problems"] for r in runs)
    return 0 if good else 1  # wrong books fail the command; slow figures never do

