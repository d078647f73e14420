"""The points desk against a real SQLite database, driven by a hypothesis state machine:
earnings, redemptions (also retried and concurrent), cancellations, lottery draws and expiry in
any order. After every step the books balance — each balance is the sum of its transactions
and of its lots, none is negative — no stock or prize pool is below zero, and the desk agrees
with a model of what should have happened."""

from __future__ import annotations

import asyncio
import random
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from vbank.domain import DomainError
from vbank.domain.flows import Text
from vbank.domain.mall import Item, Lottery, Prize, load_mall
from vbank.store import mall as catalogue
from vbank.store.db import make_engine, sessionmaker, upgrade
from vbank.store.points import PointsDesk

T0 = datetime(2026, 3, 1, tzinfo=UTC)
CUSTOMERS = ("ann", "ben", "cat")
ITEMS = (Item("cup", Text("Cup", "杯"), points=30, stock=4, per_customer_limit=2),
         Item("pen", Text("Pen", "笔"), points=7, stock=6))
POOL = Lottery("pool", Text("Pool", "奖池"), cost=5, out_of=4, prizes=(
    Prize("gift", Text("Gift", "礼物"), odds=2, stock=2),
    Prize("bonus", Text("Bonus", "积分"), odds=1, stock=3, points=9)))


async def gather(asks: list[Any]) -> list[Any]:
    """All at once, as concurrent HTTP requests would reach the desk."""
    return list(await asyncio.gather(*asks, return_exceptions=True))


class DeskMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.TemporaryDirectory()
        self.url = f"sqlite+aiosqlite:///{Path(self.dir.name) / 'vbank.db'}"
        upgrade(self.url)
        self.loop = asyncio.new_event_loop()
        self.now = T0
        base = load_mall()
        mall = type(base)({i.id: i for i in ITEMS}, base.earn, base.tiers, 30,
                          {POOL.id: POOL}, {})
        self.desk = PointsDesk(self.url, mall, clock=lambda: self.now, rng=random.Random(7))
        self.engine = make_engine(self.url)
        self.sessions = sessionmaker(self.engine)
        self.run(self._setup())
        self.orders: dict[str, tuple[str, str, int]] = {}  # order → (customer, key, points)
        self.placed: set[str] = set()
        self.keys = 0

    async def _setup(self) -> None:
        async with self.sessions.begin() as db:
            await catalogue.ensure_items(db, list(ITEMS))
            await catalogue.ensure_prizes(db, [POOL])
        self.desk.start()

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def teardown(self) -> None:
        self.run(self.desk.stop())
        self.run(self.engine.dispose())
        self.loop.close()
        self.dir.cleanup()

    def key(self) -> str:
        self.keys += 1
        return f"k{self.keys}"

    @rule(who=st.sampled_from(CUSTOMERS), points=st.integers(1, 80))
    def earn(self, who: str, points: int) -> None:
        result = self.run(self.desk.earn(who, self.key(), points, "risk_assessed"))
        assert result.earned

    @rule(who=st.sampled_from(CUSTOMERS), item=st.sampled_from(ITEMS),
          quantity=st.integers(1, 3), copies=st.integers(1, 3), concurrent=st.integers(1, 3))
    def redeem(self, who: str, item: Item, quantity: int, copies: int, concurrent: int) -> None:
        """``concurrent`` different redemptions, each sent ``copies`` times at once."""
        keys = [self.key() for _ in range(concurrent)]
        asks = [self.desk.redeem(who, item.id, quantity, k, "h") for k in keys
                for _ in range(copies)]
        results = self.run(gather(asks))
        by_key: dict[str, set[str]] = {}
        for k, result in zip([k for k in keys for _ in range(copies)], results, strict=True):
            if isinstance(result, DomainError):
                continue
            assert not isinstance(result, BaseException), result
            by_key.setdefault(k, set()).add(result.order["id"])
            self.orders[result.order["id"]] = (who, k, result.order["points"])
            self.placed.add(result.order["id"])
        assert all(len(ids) == 1 for ids in by_key.values())  # one key, one order
        for ids in by_key.values():
            [order] = ids
            fresh = [r for r in results if not isinstance(r, BaseException)
                     and r.order["id"] == order and not r.replayed]
            assert len(fresh) == 1  # exactly one of the copies spent

    @precondition(lambda self: bool(self.placed))
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        order = data.draw(st.sampled_from(sorted(self.placed)))
        who = self.orders[order][0]
        result = self.run(self.desk.cancel(who, order))
        assert result.order["status"] == "cancelled"
        self.placed.discard(order)
        again = self.run(self.desk.cancel(who, order))
        assert again.replayed

    @rule(who=st.sampled_from(CUSTOMERS), times=st.integers(1, 4))
    def draw(self, who: str, times: int) -> None:
        results = self.run(gather(
            [self.desk.draw(who, "pool", self.key(), "d") for _ in range(times)]))
        for r in results:
            assert not isinstance(r, BaseException) or isinstance(r, DomainError), r

    @rule(days=st.integers(1, 40))
    def time_passes(self, days: int) -> None:
        self.now += timedelta(days=days)
        self.run(self.desk.expire())

    @invariant()
    def books_balance(self) -> None:
        async def check() -> tuple[list[str], dict[str, int], dict[tuple[str, str], int],
                                   dict[str, int]]:
            async with self.sessions() as db:
                problems = await catalogue.consistency(db)
                stock = {row.id: row.stock for row in await catalogue.items(db)}
                prizes = await catalogue.prize_stock(db)
                sold: dict[str, int] = {}
                for who in CUSTOMERS:
                    for o in await catalogue.orders(db, who):
                        if o.status == "placed":
                            sold[o.item_id] = sold.get(o.item_id, 0) + o.quantity
                won: dict[tuple[str, str], int] = {}
                for who in CUSTOMERS:
                    for d in await catalogue.draws(db, who, limit=10_000):
                        if d.prize_id:
                            won[("pool", d.prize_id)] = won.get(("pool", d.prize_id), 0) + 1
                return problems, stock, {k: prizes[k] + won.get(k, 0) for k in prizes}, {
                    i: stock[i] + sold.get(i, 0) for i in stock}

        problems, stock, prizes_total, stock_total = self.run(check())
        assert problems == []
        assert all(s >= 0 for s in stock.values())
        assert stock_total == {i.id: i.stock for i in ITEMS}  # sold + left = what there was
        assert prizes_total == {("pool", p.id): p.stock for p in POOL.prizes}


DeskMachine.TestCase.settings = settings(max_examples=25, stateful_step_count=30,
                                         deadline=None)
TestDeskMachine = DeskMachine.TestCase
