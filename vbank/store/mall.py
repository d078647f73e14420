"""The mall's catalogue and the ledger's reads: items, stock, accounts, transactions, orders.

Writes that move points or sell stock go through ``store.points.PointsDesk``; here are the
reads, the catalogue's set-up and an administrator's restocking (an atomic ``stock + n``,
which waits for any batch holding the item's lock).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from vbank.domain.ledger import tier_for
from vbank.domain.mall import Item, Lottery
from vbank.store import StoreError
from vbank.store.models import (
    LotteryDraw,
    LotteryPrize,
    MallItem,
    MallOrder,
    PointsAccount,
    PointsLot,
    PointsTransaction,
)
from vbank.store.risk import as_utc


def item_spec(item: Item) -> dict[str, Any]:
    """An item as the JSON ``domain.mall.parse_item`` reads back."""
    spec: dict[str, Any] = {"id": item.id, "name": {"en": item.name.en, "zh": item.name.zh},
                            "points": item.points, "stock": item.stock, "tier": item.tier.value,
                            "flash": item.flash, "image": item.image,
                            "description": {"en": item.description.en,
                                            "zh": item.description.zh}}
    if item.per_customer_limit is not None:
        spec["per_customer_limit"] = item.per_customer_limit
    for key in ("starts_at", "ends_at"):
        moment: datetime | None = getattr(item, key)
        if moment is not None:
            spec[key] = moment.isoformat()
    return spec


async def add_item(db: AsyncSession, item: Item) -> MallItem:
    row = MallItem(id=item.id, spec=item_spec(item), stock=item.stock, active=True)
    db.add(row)
    try:
        await db.flush()
    except IntegrityError as exc:
        await db.rollback()
        raise StoreError(f"item {item.id!r} already exists") from exc
    return row


async def ensure_items(db: AsyncSession, items: list[Item]) -> int:
    """Add the catalogue's items that are not in the database yet (stock as configured)."""
    have = set((await db.execute(select(MallItem.id))).scalars())
    added = [item for item in items if item.id not in have]
    for item in added:
        db.add(MallItem(id=item.id, spec=item_spec(item), stock=item.stock, active=True))
    await db.flush()
    return len(added)


async def ensure_prizes(db: AsyncSession, lotteries: list[Lottery]) -> int:
    """Fill the pools of prizes that have none in the database yet (stock as configured);
    a pool that exists keeps what is left of it."""
    have = {(lottery, prize) for lottery, prize in await db.execute(
        select(LotteryPrize.lottery_id, LotteryPrize.prize_id))}
    added = 0
    for lottery in lotteries:
        for prize in lottery.prizes:
            if (lottery.id, prize.id) not in have:
                db.add(LotteryPrize(lottery_id=lottery.id, prize_id=prize.id, stock=prize.stock))
                added += 1
    await db.flush()
    return added


async def prize_stock(db: AsyncSession) -> dict[tuple[str, str], int]:
    rows = await db.execute(select(LotteryPrize.lottery_id, LotteryPrize.prize_id,
                                   LotteryPrize.stock))
    return {(lottery, prize): stock for lottery, prize, stock in rows.all()}


async def draws(db: AsyncSession, customer: str, limit: int = 100) -> list[LotteryDraw]:
    rows = await db.execute(select(LotteryDraw).where(LotteryDraw.customer == customer)
                            .order_by(LotteryDraw.at.desc(), LotteryDraw.id).limit(limit))
    return list(rows.scalars())


async def draws_since(db: AsyncSession, customer: str, since: datetime) -> dict[str, int]:
    """Lottery → how many times the customer drew in it since ``since``."""
    rows = await db.execute(select(LotteryDraw.lottery_id, func.count()).where(
        LotteryDraw.customer == customer, LotteryDraw.at >= since)
        .group_by(LotteryDraw.lottery_id))
    return {lottery: int(n) for lottery, n in rows.all()}


async def events_earned(db: AsyncSession, customer: str,
                        events: tuple[str, ...]) -> list[tuple[datetime, str]]:
    """When the customer earned for each of ``events`` (a task chain's steps), oldest first."""
    rows = await db.execute(select(PointsTransaction.at, PointsTransaction.reason).where(
        PointsTransaction.customer == customer, PointsTransaction.kind == "earn",
        PointsTransaction.reason.in_(events)).order_by(PointsTransaction.id))
    return [(as_utc(at), reason) for at, reason in rows.all()]


async def add_stock(db: AsyncSession, item_id: str, quantity: int) -> int:
    """Restock (or, with a negative quantity, take back unsold stock); the new stock."""
    row = (await db.execute(
        update(MallItem).where(MallItem.id == item_id, MallItem.stock + quantity >= 0)
        .values(stock=MallItem.stock + quantity).returning(MallItem.stock))).scalar_one_or_none()
    if row is None:
        exists = await db.get(MallItem, item_id)
        raise StoreError(f"no item {item_id!r}" if exists is None else
                         f"only {exists.stock} of {item_id} are in stock")
    return int(row)


async def items(db: AsyncSession) -> list[MallItem]:
    rows = await db.execute(select(MallItem).where(MallItem.active).order_by(MallItem.id))
    return list(rows.scalars())


async def account(db: AsyncSession, customer: str) -> dict[str, Any]:
    row = await db.get(PointsAccount, customer)
    balance, growth = (row.balance, row.growth) if row else (0, 0)
    return {"balance": balance, "growth": growth, "tier": tier_for(growth).value}


async def transactions(db: AsyncSession, customer: str, limit: int = 100,
                       before: int | None = None) -> list[PointsTransaction]:
    query = select(PointsTransaction).where(PointsTransaction.customer == customer)
    if before is not None:
        query = query.where(PointsTransaction.id < before)
    rows = await db.execute(query.order_by(PointsTransaction.id.desc()).limit(limit))
    return list(rows.scalars())


async def orders(db: AsyncSession, customer: str, limit: int = 100) -> list[MallOrder]:
    rows = await db.execute(select(MallOrder).where(MallOrder.customer == customer)
                            .order_by(MallOrder.created_at.desc(), MallOrder.id).limit(limit))
    return list(rows.scalars())


async def bought(db: AsyncSession, customer: str) -> dict[str, int]:
    """Item → how many of it the customer holds in placed orders."""
    rows = await db.execute(select(MallOrder.item_id, func.sum(MallOrder.quantity)).where(
        MallOrder.customer == customer, MallOrder.status == "placed")
        .group_by(MallOrder.item_id))
    return {item: int(n) for item, n in rows.all()}


async def consistency(db: AsyncSession) -> list[str]:
    """What is wrong with the books, if anything: every balance is the sum of its
    transactions and of its lots, none is negative, no stock is below zero."""
    problems = []
    sums = dict((await db.execute(select(PointsTransaction.customer,
                                         func.sum(PointsTransaction.points))
                                  .group_by(PointsTransaction.customer))).all())
    lots = dict((await db.execute(select(PointsLot.customer, func.sum(PointsLot.left))
                                  .group_by(PointsLot.customer))).all())
    for row in (await db.execute(select(PointsAccount))).scalars():
        if row.balance < 0:
            problems.append(f"{row.customer}: balance {row.balance} is negative")
        if row.balance != int(sums.get(row.customer) or 0):
            problems.append(f"{row.customer}: balance {row.balance} but transactions sum to "
                            f"{int(sums.get(row.customer) or 0)}")
        if row.balance != int(lots.get(row.customer) or 0):
            problems.append(f"{row.customer}: balance {row.balance} but lots hold "
                            f"{int(lots.get(row.customer) or 0)}")
    for item in (await db.execute(select(MallItem))).scalars():
        if item.stock < 0:
            problems.append(f"item {item.id}: stock {item.stock} is negative")
    for prize in (await db.execute(select(LotteryPrize))).scalars():
        if prize.stock < 0:
            problems.append(f"prize {prize.lottery_id}/{prize.prize_id}: stock {prize.stock} "
                            "is negative")
    return problems

