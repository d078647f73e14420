"""The points desk: every write to the ledger and the mall's stock goes through here.

Redemptions, cancellations, earnings and expiry are queued and applied in *batches*, each
one database transaction (group commit): while one batch commits, the next gathers. A batch
locks what it touches in one order everywhere — accounts by customer, then orders, then
items by id — with ``SELECT … FOR UPDATE`` on PostgreSQL (so several nodes can share the
database) and ``BEGIN IMMEDIATE`` on SQLite; under those locks the pure rules
(``domain.ledger``, ``domain.mall``) decide each request in turn, and the results are
written back. ``CHECK`` constraints (stock, balance, lots ≥ 0) stand behind the rules.

A request's outcome is given to its caller only after its batch committed. If a batch
fails as a whole (a deadlock, a lost connection), its requests are tried again one by one,
so one bad request fails only itself. Retries with the same idempotency key find the
order the first try made: nothing is debited twice, even across a crash.
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, event, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from vbank.domain import DomainError
from vbank.domain.ledger import KeyReused, Kind, Lot, PointsAccount, Transaction
from vbank.domain.mall import (
    Mall,
    MallError,
    UnknownItem,
    UnknownLottery,
    check_draw,
    check_redemption,
    day_start,
    parse_item,
)
from vbank.store import StoreError
from vbank.store.models import (
    LotteryDraw,
    LotteryPrize,
    MallItem,
    MallOrder,
    PointsLot,
    PointsTransaction,
)
from vbank.store.models import PointsAccount as AccountRow
from vbank.store.risk import as_utc

log = logging.getLogger(__name__)
ACCOUNTS = cast(Table, AccountRow.__table__)
LOTS = cast(Table, PointsLot.__table__)
TXS = cast(Table, PointsTransaction.__table__)
ITEMS = cast(Table, MallItem.__table__)
ORDERS = cast(Table, MallOrder.__table__)
PRIZES = cast(Table, LotteryPrize.__table__)
DRAWS = cast(Table, LotteryDraw.__table__)
MAX_BATCH = 256


class DeskUnavailable(StoreError):
    """The database did not take a request; nothing was written, the same key may retry."""


class UnknownOrder(MallError):
    status = 404


# --------------------------------------------------------------------------- requests
@dataclass
class _Request:
    customer: str
    future: asyncio.Future[Any] = field(init=False, repr=False)


@dataclass
class Redeem(_Request):
    item_id: str
    quantity: int
    key: str  # the client's Idempotency-Key
    request_sha256: str  # what was asked under that key


@dataclass
class Cancel(_Request):
    order_id: str


@dataclass
class Earn(_Request):
    key: str  # e.g. ``contract_signed:<session>``: the same key earns once
    points: int
    reason: str
    growth: int | None = None


@dataclass
class Draw(_Request):
    lottery_id: str
    key: str  # the client's Idempotency-Key
    request_sha256: str


@dataclass(frozen=True, slots=True)
class DrawResult:
    draw: dict[str, Any]  # id, lottery_id, prize_id (None: nothing won), cost, at
    balance: int
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class OrderResult:
    order: dict[str, Any]
    balance: int
    replayed: bool = False  # the same key asked before: this is that order, nothing spent


@dataclass(frozen=True, slots=True)
class EarnResult:
    points: int
    balance: int
    earned: bool  # False: this key had earned already


# --------------------------------------------------------------------------- a batch's view
@dataclass
class _Batch:
    """What one batch loaded under its locks, and what it changed."""

    now: datetime
    accounts: dict[str, PointsAccount]
    versions: dict[str, int]
    lots_stored: dict[tuple[str, str], int]  # (customer, lot) → left, as loaded
    items: dict[str, dict[str, Any]]  # id → {spec, stock, active}
    stock_stored: dict[str, int]
    orders: dict[str, dict[str, Any]]  # by id: loaded or new
    by_key: dict[tuple[str, str], dict[str, Any]]  # (customer, idempotency key) → order
    bought: dict[tuple[str, str], int]  # (customer, item) → placed quantity
    earned_keys: set[tuple[str, str]]
    prizes: dict[tuple[str, str], int] = field(default_factory=dict)  # (lottery, prize) → left
    prizes_stored: dict[tuple[str, str], int] = field(default_factory=dict)
    draws_by_key: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    draws_today: dict[tuple[str, str], int] = field(default_factory=dict)
    new_draws: list[dict[str, Any]] = field(default_factory=list)
    new_orders: list[dict[str, Any]] = field(default_factory=list)
    cancelled: list[dict[str, Any]] = field(default_factory=list)
    new_txs: list[tuple[str, Transaction]] = field(default_factory=list)


def draw_public(draw: dict[str, Any]) -> dict[str, Any]:
    return {k: draw[k] for k in ("id", "lottery_id", "prize_id", "cost", "at")}


def order_public(order: dict[str, Any]) -> dict[str, Any]:
    return {k: order[k] for k in ("id", "item_id", "quantity", "points", "status",
                                  "created_at", "cancelled_at")}


def _configure_sqlite(engine: AsyncEngine, begin: str) -> None:
    """WAL (readers never wait for the writer), a busy wait, and our own BEGIN."""

    @event.listens_for(engine.sync_engine, "connect")
    def connect(dbapi_connection: Any, _: Any) -> None:
        dbapi_connection.isolation_level = None  # pysqlite must not begin on its own
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def do_begin(conn: Any) -> None:
        conn.exec_driver_sql(begin)


class PointsDesk:
    """The one writer of points and stock on this node."""

    def __init__(self, url: str, mall: Mall, clock: Callable[[], datetime] | None = None,
                 rng: random.Random | None = None) -> None:
        self.mall = mall
        self._rng = rng or random.SystemRandom()  # lottery rolls nobody can predict
        self._clock = clock or (lambda: datetime.now(UTC))
        self._sqlite = url.startswith("sqlite")
        self._engine = create_async_engine(url, pool_size=2, pool_pre_ping=True) \
            if not self._sqlite else \
            create_async_engine(url)
        if self._sqlite:
            _configure_sqlite(self._engine, "BEGIN IMMEDIATE")
        self._queue: asyncio.Queue[_Request] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.batches = 0  # committed batches, for the benchmark's report

    # ------------------------------------------------------------------ life
    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="points-desk")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        while not self._queue.empty():
            self._queue.get_nowait().future.set_exception(
                DeskUnavailable("the server is stopping; try again"))
        await self._engine.dispose()

    # ------------------------------------------------------------------ commands
    async def redeem(self, customer: str, item_id: str, quantity: int, key: str,
                     request_sha256: str) -> OrderResult:
        return await self._submit(Redeem(customer, item_id, quantity, key, request_sha256))

    async def cancel(self, customer: str, order_id: str) -> OrderResult:
        return await self._submit(Cancel(customer, order_id))

    async def draw(self, customer: str, lottery_id: str, key: str,
                   request_sha256: str) -> DrawResult:
        return await self._submit(Draw(customer, lottery_id, key, request_sha256))

    async def earn(self, customer: str, key: str, points: int, reason: str,
                   growth: int | None = None) -> EarnResult:
        return await self._submit(Earn(customer, key, points, reason, growth))

    async def _submit(self, request: _Request) -> Any:
        request.future = asyncio.get_running_loop().create_future()
        if self._task is None or self._task.done():
            raise DeskUnavailable("the points desk is not running")
        self._queue.put_nowait(request)
        return await request.future

    async def expire(self) -> int:
        """Expire every lot past its date; returns the points expired. Not batched with
        redemptions: it walks customers in small groups of its own."""
        now = self._clock()
        async with self._engine.begin() as conn:
            customers = sorted((await conn.execute(
                select(LOTS.c.customer).distinct().where(
                    LOTS.c.left > 0, LOTS.c.expires_at <= now))).scalars())
        total = 0
        for start in range(0, len(customers), 100):
            group = customers[start:start + 100]
            async with self._engine.begin() as conn:
                batch = await self._load(conn, [], group, now)
                for customer in group:
                    for tx in batch.accounts[customer].expire(now):
                        batch.new_txs.append((customer, tx))
                        total -= tx.points
                await self._write(conn, batch)
        if total:
            log.info("expired %d points of %d customers", total, len(customers))
        return total

    # ------------------------------------------------------------------ the batch loop
    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._apply(batch)
            except asyncio.CancelledError:
                for request in batch:
                    if not request.future.done():
                        request.future.set_exception(DeskUnavailable("the server is stopping"))
                raise
            except Exception:
                if len(batch) > 1:
                    log.warning("points desk: a batch of %d failed; one at a time",
                                len(batch), exc_info=True)
                for request in batch:
                    await self._apply_alone(request)

    async def _apply_alone(self, request: _Request) -> None:
        if request.future.done():
            return
        try:
            await self._apply([request])
        except Exception:
            log.exception("points desk: a request failed")
            if not request.future.done():
                request.future.set_exception(
                    DeskUnavailable("the points ledger is busy; try again"))

    async def _apply(self, requests: list[_Request]) -> None:
        now = self._clock()
        customers = sorted({r.customer for r in requests})
        for attempt in range(3):
            try:
                async with self._engine.begin() as conn:
                    batch = await self._load(conn, requests, customers, now)
                    outcomes = [self._decide(batch, r) for r in requests]
                    await self._write(conn, batch)
                break
            except DBAPIError as exc:  # a deadlock between nodes: both roll back, try again
                if attempt == 2 or "deadlock" not in str(exc).lower():
                    raise
        self.batches += 1
        for request, outcome in zip(requests, outcomes, strict=True):
            if request.future.done():
                continue
            if isinstance(outcome, BaseException):
                request.future.set_exception(outcome)
            else:
                request.future.set_result(outcome)

    # ------------------------------------------------------------------ load under locks
    async def _load(self, conn: AsyncConnection, requests: Iterable[_Request],
                    customers: list[str], now: datetime) -> _Batch:
        requests = list(requests)
        insert = sqlite_insert if self._sqlite else pg_insert
        if customers:
            await conn.execute(insert(ACCOUNTS).on_conflict_do_nothing(), [
                {"customer": c, "balance": 0, "growth": 0, "version": 0} for c in customers])
        rows = (await conn.execute(
            select(ACCOUNTS).where(ACCOUNTS.c.customer.in_(customers))
            .order_by(ACCOUNTS.c.customer).with_for_update())).mappings().all()
        cancels = [r for r in requests if isinstance(r, Cancel)]
        orders: dict[str, dict[str, Any]] = {}
        if cancels:
            for row in (await conn.execute(
                    select(ORDERS).where(ORDERS.c.id.in_({r.order_id for r in cancels}))
                    .order_by(ORDERS.c.id).with_for_update())).mappings():
                orders[row["id"]] = dict(row)
        spend_keys = [f"order:{o}" for o in orders]
        known: dict[str, list[Transaction]] = {c: [] for c in customers}
        needed_lots: set[str] = set()
        if spend_keys:
            for row in (await conn.execute(select(TXS).where(
                    TXS.c.customer.in_(customers), TXS.c.key.in_(spend_keys)))).mappings():
                tx = _transaction(row)
                known[row["customer"]].append(tx)
                needed_lots.update(lot for lot, _ in tx.used)
        lots: dict[str, list[Lot]] = {c: [] for c in customers}
        lots_stored: dict[tuple[str, str], int] = {}
        lot_filter = LOTS.c.left > 0 if not needed_lots else or_(
            LOTS.c.left > 0, LOTS.c.key.in_(needed_lots))
        for row in (await conn.execute(select(LOTS).where(
                LOTS.c.customer.in_(customers), lot_filter))).mappings():
            lots[row["customer"]].append(Lot(row["key"], row["left"],
                                             _aware(row["expires_at"])))
            lots_stored[(row["customer"], row["key"])] = row["left"]
        accounts = {r["customer"]: PointsAccount.from_state(
            r["customer"], r["balance"], r["growth"], lots[r["customer"]],
            known[r["customer"]]) for r in rows}
        item_ids = sorted({r.item_id for r in requests if isinstance(r, Redeem)}
                          | {o["item_id"] for o in orders.values()})
        items: dict[str, dict[str, Any]] = {}
        if item_ids:
            for row in (await conn.execute(
                    select(ITEMS).where(ITEMS.c.id.in_(item_ids)).order_by(ITEMS.c.id)
                    .with_for_update())).mappings():
                items[row["id"]] = dict(row)
        redeems = [r for r in requests if isinstance(r, Redeem)]
        by_key: dict[tuple[str, str], dict[str, Any]] = {}
        bought: dict[tuple[str, str], int] = {}
        if redeems:
            for row in (await conn.execute(select(ORDERS).where(
                    ORDERS.c.customer.in_(customers),
                    ORDERS.c.idempotency_key.in_({r.key for r in redeems})))).mappings():
                by_key[(row["customer"], row["idempotency_key"])] = dict(row)
            limited = [i for i, row in items.items() if row["spec"].get("per_customer_limit")]
            if limited:
                for customer, item_id, quantity in (await conn.execute(
                        select(ORDERS.c.customer, ORDERS.c.item_id, func.sum(ORDERS.c.quantity))
                        .where(ORDERS.c.customer.in_(customers), ORDERS.c.item_id.in_(limited),
                               ORDERS.c.status == "placed")
                        .group_by(ORDERS.c.customer, ORDERS.c.item_id))).all():
                    bought[(customer, item_id)] = int(quantity)
        draws = [r for r in requests if isinstance(r, Draw)]
        prizes: dict[tuple[str, str], int] = {}
        draws_by_key: dict[tuple[str, str], dict[str, Any]] = {}
        draws_today: dict[tuple[str, str], int] = {}
        if draws:
            lotteries = sorted({r.lottery_id for r in draws})
            for row in (await conn.execute(
                    select(PRIZES).where(PRIZES.c.lottery_id.in_(lotteries))
                    .order_by(PRIZES.c.lottery_id, PRIZES.c.prize_id).with_for_update())
                    ).mappings():
                prizes[(row["lottery_id"], row["prize_id"])] = row["stock"]
            for row in (await conn.execute(select(DRAWS).where(
                    DRAWS.c.customer.in_(customers),
                    DRAWS.c.idempotency_key.in_({r.key for r in draws})))).mappings():
                draws_by_key[(row["customer"], row["idempotency_key"])] = dict(row)
            for customer, lottery_id, count in (await conn.execute(
                    select(DRAWS.c.customer, DRAWS.c.lottery_id, func.count())
                    .where(DRAWS.c.customer.in_(customers), DRAWS.c.lottery_id.in_(lotteries),
                           DRAWS.c.at >= day_start(now))
                    .group_by(DRAWS.c.customer, DRAWS.c.lottery_id))).all():
                draws_today[(customer, lottery_id)] = int(count)
        earns = [r for r in requests if isinstance(r, Earn)]
        earned: set[tuple[str, str]] = set()
        if earns:
            earned = {(c, k) for c, k in (await conn.execute(select(TXS.c.customer, TXS.c.key)
                      .where(TXS.c.customer.in_(customers),
                             TXS.c.key.in_({r.key for r in earns})))).all()}
        return _Batch(now, accounts, {r["customer"]: r["version"] for r in rows}, lots_stored,
                      items, {i: row["stock"] for i, row in items.items()}, orders, by_key,
                      bought, earned, prizes, dict(prizes), draws_by_key, draws_today)

    # ------------------------------------------------------------------ decide
    def _decide(self, batch: _Batch, request: _Request) -> Any:
        try:
            if isinstance(request, Redeem):
                return self._redeem(batch, request)
            if isinstance(request, Cancel):
                return self._cancel(batch, request)
            if isinstance(request, Earn):
                return self._earn(batch, request)
            if isinstance(request, Draw):
                return self._draw(batch, request)
        except DomainError as exc:
            return exc
        raise TypeError(request)

    def _redeem(self, batch: _Batch, r: Redeem) -> OrderResult:
        account = batch.accounts[r.customer]
        before = batch.by_key.get((r.customer, r.key))
        if before is not None:
            if before["request_sha256"] != r.request_sha256:
                raise KeyReused("this Idempotency-Key was used for another redemption")
            return OrderResult(order_public(before), account.balance, replayed=True)
        row = batch.items.get(r.item_id)
        if row is None or not row["active"]:
            raise UnknownItem(f"no item {r.item_id!r} in the mall")
        item = parse_item(row["spec"], f"item {r.item_id}")
        cost = check_redemption(item, r.quantity, account.tier,
                                self.mall.benefit(account.tier), row["stock"],
                                batch.bought.get((r.customer, r.item_id), 0), account.balance,
                                batch.now)
        order_id = "o" + secrets.token_hex(8)
        tx = account.spend(f"order:{order_id}", cost, batch.now, f"order:{order_id}")
        batch.new_txs.append((r.customer, tx))
        row["stock"] -= r.quantity
        batch.bought[(r.customer, r.item_id)] = batch.bought.get(
            (r.customer, r.item_id), 0) + r.quantity
        order = {"id": order_id, "customer": r.customer, "item_id": r.item_id,
                 "quantity": r.quantity, "points": cost, "status": "placed",
                 "idempotency_key": r.key, "request_sha256": r.request_sha256,
                 "created_at": batch.now, "cancelled_at": None}
        batch.new_orders.append(order)
        batch.by_key[(r.customer, r.key)] = order
        batch.orders[order_id] = order
        return OrderResult(order_public(order), account.balance)

    def _cancel(self, batch: _Batch, r: Cancel) -> OrderResult:
        order = batch.orders.get(r.order_id)
        if order is None or order["customer"] != r.customer:
            raise UnknownOrder(f"no order {r.order_id!r} of yours")
        account = batch.accounts[r.customer]
        if order["status"] == "cancelled":  # cancelling again changes nothing
            return OrderResult(order_public(order), account.balance, replayed=True)
        tx = account.refund(f"refund:{order['id']}", f"order:{order['id']}", batch.now,
                            "cancelled")
        batch.new_txs.append((r.customer, tx))
        order.update(status="cancelled", cancelled_at=batch.now)
        if order not in batch.new_orders:
            batch.cancelled.append(order)
        item = batch.items.get(order["item_id"])
        if item is not None:
            item["stock"] += order["quantity"]
        return OrderResult(order_public(order), account.balance)

    def _draw(self, batch: _Batch, r: Draw) -> DrawResult:
        account = batch.accounts[r.customer]
        before = batch.draws_by_key.get((r.customer, r.key))
        if before is not None:
            if before["request_sha256"] != r.request_sha256:
                raise KeyReused("this Idempotency-Key was used for another request")
            return DrawResult(draw_public(before), account.balance, replayed=True)
        lottery = self.mall.lotteries.get(r.lottery_id)
        if lottery is None:
            raise UnknownLottery(f"no lottery {r.lottery_id!r}")
        today = batch.draws_today.get((r.customer, r.lottery_id), 0)
        cost = check_draw(lottery, today, account.balance, batch.now)
        draw_id = "d" + secrets.token_hex(8)
        batch.new_txs.append((r.customer, account.spend(f"draw:{draw_id}", cost, batch.now,
                                                        f"draw:{r.lottery_id}")))
        left = {p.id: batch.prizes.get((lottery.id, p.id), 0) for p in lottery.prizes}
        prize = lottery.prize_for(self._rng.randrange(lottery.out_of), left)
        if prize is not None:
            batch.prizes[(lottery.id, prize.id)] -= 1
            if prize.points:
                batch.new_txs.append((r.customer, account.earn(
                    f"prize:{draw_id}", prize.points, batch.now,
                    self.mall.expires_at(batch.now), f"prize:{lottery.id}", growth=0)))
        draw = {"id": draw_id, "customer": r.customer, "lottery_id": lottery.id,
                "prize_id": None if prize is None else prize.id, "cost": cost,
                "idempotency_key": r.key, "request_sha256": r.request_sha256, "at": batch.now}
        batch.new_draws.append(draw)
        batch.draws_by_key[(r.customer, r.key)] = draw
        batch.draws_today[(r.customer, r.lottery_id)] = today + 1
        return DrawResult(draw_public(draw), account.balance)

    def _earn(self, batch: _Batch, r: Earn) -> EarnResult:
        account = batch.accounts[r.customer]
        if (r.customer, r.key) in batch.earned_keys:
            return EarnResult(r.points, account.balance, earned=False)
        tx = account.earn(r.key, r.points, batch.now, self.mall.expires_at(batch.now),
                          r.reason, r.growth)
        batch.new_txs.append((r.customer, tx))
        batch.earned_keys.add((r.customer, r.key))
        return EarnResult(r.points, account.balance, earned=True)

    # ------------------------------------------------------------------ write back
    async def _write(self, conn: AsyncConnection, batch: _Batch) -> None:
        if not batch.new_txs:
            return
        await conn.execute(TXS.insert(), [
            {"customer": c, "key": t.key, "kind": t.kind.value, "points": t.points,
             "growth": t.growth, "at": t.at, "expires_at": t.expires_at, "reason": t.reason,
             "used": [list(u) for u in t.used]} for c, t in batch.new_txs])
        changed = {c for c, _ in batch.new_txs}
        counts: dict[str, int] = {}
        for c, _ in batch.new_txs:
            counts[c] = counts.get(c, 0) + 1
        await conn.execute(
            update(ACCOUNTS).where(ACCOUNTS.c.customer == bindparam("c"))
            .values(balance=bindparam("b"), growth=bindparam("g"), version=bindparam("v")),
            [{"c": c, "b": batch.accounts[c].balance, "g": batch.accounts[c].growth,
              "v": batch.versions[c] + counts[c]} for c in sorted(changed)])
        new_lots, lot_updates = [], []
        for c in sorted(changed):
            for lot in batch.accounts[c].lots.values():
                stored = batch.lots_stored.get((c, lot.key))
                if stored is None:
                    new_lots.append({"customer": c, "key": lot.key, "left": lot.left,
                                     "expires_at": lot.expires_at})
                elif stored != lot.left:
                    lot_updates.append({"c": c, "k": lot.key, "l": lot.left})
        if new_lots:
            await conn.execute(LOTS.insert(), new_lots)
        if lot_updates:
            await conn.execute(update(LOTS).where(and_(
                LOTS.c.customer == bindparam("c"), LOTS.c.key == bindparam("k")))
                .values(left=bindparam("l")), lot_updates)
        stock = [{"i": i, "s": row["stock"]} for i, row in batch.items.items()
                 if row["stock"] != batch.stock_stored[i]]
        if stock:
            await conn.execute(update(ITEMS).where(ITEMS.c.id == bindparam("i"))
                               .values(stock=bindparam("s")), stock)
        if batch.new_orders:
            await conn.execute(ORDERS.insert(), batch.new_orders)
        prizes = [{"l": lottery, "p": prize, "s": left}
                  for (lottery, prize), left in batch.prizes.items()
                  if left != batch.prizes_stored[(lottery, prize)]]
        if prizes:
            await conn.execute(update(PRIZES).where(and_(
                PRIZES.c.lottery_id == bindparam("l"), PRIZES.c.prize_id == bindparam("p")))
                .values(stock=bindparam("s")), prizes)
        if batch.new_draws:
            await conn.execute(DRAWS.insert(), batch.new_draws)
        if batch.cancelled:
            await conn.execute(update(ORDERS).where(ORDERS.c.id == bindparam("i"))
                               .values(status="cancelled", cancelled_at=bindparam("t")),
                               [{"i": o["id"], "t": o["cancelled_at"]} for o in batch.cancelled])


def _aware(moment: datetime | None) -> datetime | None:
    return None if moment is None else as_utc(moment)


def _transaction(row: Any) -> Transaction:
    return Transaction(row["key"], Kind(row["kind"]), row["points"], as_utc(row["at"]),
                       row["growth"], _aware(row["expires_at"]), row["reason"],
                       tuple((str(k), int(n)) for k, n in row["used"]))

