"""``/api/v1/points`` and ``/api/v1/mall``: a customer's points, the catalogue, redemptions.

A redemption needs an ``Idempotency-Key`` header: the same key with the same body gives back
the same order and spends nothing; the same key with another body is ``409``. Out of stock
is ``409``; too few points, over a limit, the wrong tier or outside the sale window ``422``.
Administrators add items and stock under ``/api/v1/admin/mall``.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import (
    APIRouter,
    Depends,
    Header,
    HTTPException,
    Path,
    Query,
    Request,
    Response,
    status,
)
from pydantic import BaseModel, Field

from vbank.api.deps import CurrentCustomer, CurrentUser, DbDep, problem, require, too_many
from vbank.auth import Principal, Role
from vbank.domain.ledger import TIER_FROM, InsufficientPoints, KeyReused, Tier
from vbank.domain.mall import (
    Mall,
    MallError,
    MallFileError,
    OutOfStock,
    UnknownItem,
    UnknownLottery,
    day_start,
    parse_item,
    price,
)
from vbank.store import StoreError
from vbank.store import mall as catalogue
from vbank.store.points import DeskUnavailable, OrderResult, PointsDesk
from vbank.store.risk import as_utc

router = APIRouter(prefix="/api/v1", tags=["mall"])
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]


# ``async``, though they never wait: FastAPI runs a plain ``def`` dependency in its thread
# pool, a hop that made a redemption cost the server about 1.0 ms of CPU instead of 0.6.
async def get_desk(request: Request) -> PointsDesk:
    return request.app.state.desk


async def get_mall(request: Request) -> Mall:
    return request.app.state.mall


DeskDep = Annotated[PointsDesk, Depends(get_desk)]
MallDep = Annotated[Mall, Depends(get_mall)]


class PointsPublic(BaseModel):
    balance: int = Field(description="spendable points")
    growth: int = Field(description="growth value (成长值): sets the tier, never spent")
    tier: Tier
    tier_from: int = Field(description="the growth value at which the current tier starts")
    discount_pct: int
    early_access_min: int
    next_tier: Tier | None
    growth_to_next_tier: int | None


class TransactionPublic(BaseModel):
    id: int
    key: str
    kind: str
    points: int
    growth: int
    at: datetime
    expires_at: datetime | None
    reason: str


class ItemPublic(BaseModel):
    id: str
    name: dict[str, str]
    description: dict[str, str]
    points: int = Field(description="list price in points")
    price: int | None = Field(description="what one costs the caller (tier discount); "
                                           "customers only")
    stock: int
    per_customer_limit: int | None
    bought: int | None = Field(None, description="how many the calling customer holds "
                                                 "(placed orders): what counts against the limit")
    tier: Tier
    starts_at: datetime | None
    ends_at: datetime | None
    opens_at: datetime | None = Field(None, description="when the calling customer may "
                                                        "redeem: a flash sale opens early for "
                                                        "higher tiers")
    flash: bool
    image_url: str | None


class RedemptionCreate(BaseModel):
    item_id: str = Field(min_length=1, max_length=32)
    quantity: int = Field(1, ge=1, le=100)


class OrderPublic(BaseModel):
    id: str
    item_id: str
    quantity: int
    points: int
    status: str
    created_at: datetime
    cancelled_at: datetime | None


class RedemptionPublic(BaseModel):
    order_id: str
    points_spent: int
    balance: int
    order: OrderPublic


class ItemCreate(BaseModel):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")
    name: dict[str, str] | str
    points: int = Field(ge=1, le=10_000_000)
    stock: int = Field(ge=0, le=10_000_000)
    per_customer_limit: int | None = Field(None, ge=1)
    tier: Tier = Tier.STANDARD
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    flash: bool = False
    image: str = Field("", max_length=64, pattern=r"^[A-Za-z0-9_.-]*$")
    description: dict[str, str] | str = ""


class StockChange(BaseModel):
    quantity: int = Field(ge=-10_000_000, le=10_000_000, description="added (− takes back)")


class StockPublic(BaseModel):
    id: str
    stock: int


# --------------------------------------------------------------------------- points
@router.get("/points", response_model=PointsPublic)
async def my_points(customer: CurrentCustomer, db: DbDep, mall: MallDep) -> PointsPublic:
    account = await catalogue.account(db, customer.username)
    tier = Tier(account["tier"])
    benefit = mall.benefit(tier)
    higher = [(t, start) for t, start in reversed(TIER_FROM) if start > account["growth"]]
    return PointsPublic(**account, tier_from=dict(TIER_FROM)[tier],
                        discount_pct=benefit.discount_pct,
                        early_access_min=benefit.early_access_min,
                        next_tier=higher[0][0] if higher else None,
                        growth_to_next_tier=higher[0][1] - account["growth"] if higher else None)


@router.get("/points/transactions", response_model=list[TransactionPublic])
async def my_transactions(customer: CurrentCustomer, db: DbDep,
                          limit: Annotated[int, Query(ge=1, le=500)] = 100,
                          before: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
                          ) -> list[TransactionPublic]:
    """The customer's ledger, newest first; page with ``before`` (an id)."""
    rows = await catalogue.transactions(db, customer.username, limit, before)
    return [TransactionPublic(id=r.id, key=r.key, kind=r.kind, points=r.points, growth=r.growth,
                              at=as_utc(r.at), reason=r.reason,
                              expires_at=None if r.expires_at is None else as_utc(r.expires_at))
            for r in rows]


# --------------------------------------------------------------------------- the mall
@router.get("/mall/items", response_model=list[ItemPublic])
async def list_items(user: CurrentUser, db: DbDep, mall: MallDep) -> list[ItemPublic]:
    benefit = None
    bought: dict[str, int] = {}
    if user.role is Role.CUSTOMER:
        benefit = mall.benefit(Tier((await catalogue.account(db, user.username))["tier"]))
        bought = await catalogue.bought(db, user.username)
    out = []
    for row in await catalogue.items(db):
        item = parse_item(row.spec, f"item {row.id}")
        opens = item.starts_at
        if opens is not None and item.flash and benefit is not None:
            opens -= timedelta(minutes=benefit.early_access_min)
        out.append(ItemPublic(
            id=item.id, name={"en": item.name.en, "zh": item.name.zh},
            description={"en": item.description.en, "zh": item.description.zh},
            points=item.points, price=None if benefit is None else price(item, 1, benefit),
            stock=row.stock, per_customer_limit=item.per_customer_limit, tier=item.tier,
            bought=None if benefit is None else bought.get(item.id, 0), opens_at=opens,
            starts_at=item.starts_at, ends_at=item.ends_at, flash=item.flash,
            image_url=f"/static/mall/{item.image}" if item.image else None))
    return out


def _order(result: OrderResult) -> RedemptionPublic:
    o = result.order
    order = OrderPublic(id=o["id"], item_id=o["item_id"], quantity=o["quantity"],
                        points=o["points"], status=o["status"], created_at=as_utc(o["created_at"]),
                        cancelled_at=None if o["cancelled_at"] is None else
                        as_utc(o["cancelled_at"]))
    return RedemptionPublic(order_id=order.id, points_spent=0 if result.replayed else order.points,
                            balance=result.balance, order=order)


def _refused(exc: Exception) -> HTTPException:
    if isinstance(exc, KeyReused):
        return HTTPException(status.HTTP_409_CONFLICT, str(exc))
    if isinstance(exc, InsufficientPoints):
        return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                             f"too few points: {exc}")
    if isinstance(exc, (UnknownItem, UnknownLottery)):
        return HTTPException(status.HTTP_404_NOT_FOUND, str(exc))
    if isinstance(exc, OutOfStock):
        return HTTPException(status.HTTP_409_CONFLICT, str(exc))
    if isinstance(exc, MallError):  # not on sale, over the limit, tier too low
        return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc))
    if isinstance(exc, DeskUnavailable):
        return HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc),
                             headers={"Retry-After": "1"})
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc))


IdempotencyKey = Annotated[str, Header(alias="Idempotency-Key", min_length=1, max_length=96,
                                       pattern=r"^[\x21-\x7e]+$",
                                       description="one per redemption the customer means; "
                                                   "reuse it to retry safely")]


@router.post("/mall/redemptions", response_model=RedemptionPublic,
             status_code=status.HTTP_201_CREATED,
             responses={404: problem("no such item in the mall"),
                        409: {"description": "out of stock, or the key was used for another "
                                             "redemption"},
                        422: {"description": "too few points, over the limit, tier, window"},
                        429: {"description": "too many redemptions a minute: wait "
                                             "Retry-After seconds, then retry with the key"},
                        503: {"description": "try again with the same key"}})
async def redeem(body: RedemptionCreate, customer: CurrentCustomer, desk: DeskDep,
                 key: IdempotencyKey, request: Request, response: Response) -> RedemptionPublic:
    wait = await request.app.state.limits.redemptions.take(customer.username)
    if wait is not None:
        raise too_many("too many redemptions in a minute; try again later", wait)
    digest = hashlib.sha256(json.dumps(body.model_dump(), sort_keys=True).encode()).hexdigest()
    try:
        result = await desk.redeem(customer.username, body.item_id, body.quantity, key, digest)
    except (MallError, InsufficientPoints, KeyReused, DeskUnavailable) as exc:
        raise _refused(exc) from exc
    if result.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    else:
        await request.app.state.branch.send_to(customer.username, {
            "type": "redeemed", "order_id": result.order["id"], "item_id": body.item_id,
            "quantity": body.quantity, "points": result.order["points"],
            "balance": result.balance})
    return _order(result)


@router.get("/mall/redemptions", response_model=list[OrderPublic])
async def my_orders(customer: CurrentCustomer, db: DbDep) -> list[OrderPublic]:
    return [OrderPublic(id=o.id, item_id=o.item_id, quantity=o.quantity, points=o.points,
                        status=o.status, created_at=as_utc(o.created_at),
                        cancelled_at=None if o.cancelled_at is None else as_utc(o.cancelled_at))
            for o in await catalogue.orders(db, customer.username)]


@router.post("/mall/redemptions/{order_id}/cancel", response_model=RedemptionPublic,
             responses={404: {"description": "no such order of yours"}})
async def cancel(order_id: Annotated[str, Path(max_length=32)], customer: CurrentCustomer,
                 desk: DeskDep, request: Request) -> RedemptionPublic:
    """Cancel an order: its points come back (with their old expiry) and so does the stock.
    Cancelling a cancelled order changes nothing."""
    try:
        result = await desk.cancel(customer.username, order_id)
    except (MallError, DeskUnavailable) as exc:
        raise _refused(exc) from exc
    out = _order(result)
    out.points_spent = 0 if result.replayed else -result.order["points"]
    if not result.replayed:  # the customer's other windows hear of the refund
        await request.app.state.branch.send_to(customer.username, {
            "type": "order_cancelled", "order_id": out.order_id,
            "item_id": result.order["item_id"], "points": result.order["points"],
            "balance": result.balance})
    return out


# --------------------------------------------------------------------------- campaigns
class PrizePublic(BaseModel):
    id: str
    name: dict[str, str]
    chance_pct: float = Field(description="the chance one draw wins it, while it lasts")
    points: int = Field(description="points credited when won; 0: goods")
    stock: int
    image_url: str | None


class LotteryPublic(BaseModel):
    id: str
    name: dict[str, str]
    cost: int
    per_customer_per_day: int | None
    starts_at: datetime | None
    ends_at: datetime | None
    prizes: list[PrizePublic]
    draws_today: int | None = Field(description="the caller's draws today; customers only")


class TaskChainPublic(BaseModel):
    id: str
    name: dict[str, str]
    steps: list[str]
    points: int
    starts_at: datetime | None
    ends_at: datetime | None
    done: int | None = Field(description="steps the caller has done, in order; customers only")
    completed: bool | None


class CampaignsPublic(BaseModel):
    lotteries: list[LotteryPublic]
    task_chains: list[TaskChainPublic]


class DrawPublic(BaseModel):
    draw_id: str
    lottery_id: str
    prize: PrizePublic | None = Field(description="what the draw won; null: nothing")
    points_spent: int
    balance: int
    at: datetime


def _prize(mall: Mall, lottery_id: str, prize_id: str | None,
           stock: dict[tuple[str, str], int]) -> PrizePublic | None:
    lottery = mall.lotteries.get(lottery_id)
    prize = next((p for p in lottery.prizes if p.id == prize_id), None) if lottery else None
    if lottery is None or prize is None:
        return None
    return PrizePublic(id=prize.id, name={"en": prize.name.en, "zh": prize.name.zh},
                       chance_pct=round(100 * prize.odds / lottery.out_of, 3),
                       points=prize.points, stock=stock.get((lottery_id, prize.id), 0),
                       image_url=f"/static/mall/{prize.image}" if prize.image else None)


@router.get("/campaigns", response_model=CampaignsPublic)
async def campaigns(user: CurrentUser, db: DbDep, mall: MallDep) -> CampaignsPublic:
    """Lotteries with their pools and odds, task chains with the caller's progress."""
    customer = user.username if user.role is Role.CUSTOMER else None
    stock = await catalogue.prize_stock(db)
    drawn: dict[str, int] = {}
    if customer is not None:  # counted as the desk counts them
        drawn = await catalogue.draws_since(db, customer, day_start(datetime.now(UTC)))
    lotteries = [LotteryPublic(
        id=lot.id, name={"en": lot.name.en, "zh": lot.name.zh}, cost=lot.cost,
        per_customer_per_day=lot.per_customer_per_day, starts_at=lot.starts_at,
        ends_at=lot.ends_at, draws_today=None if customer is None else drawn.get(lot.id, 0),
        prizes=[p for p in (_prize(mall, lot.id, prize.id, stock) for prize in lot.prizes)
                if p is not None]) for lot in mall.lotteries.values()]
    chains = []
    for chain in mall.task_chains.values():
        done = None
        if customer is not None:
            done = chain.progress(await catalogue.events_earned(db, customer, chain.steps))
        chains.append(TaskChainPublic(
            id=chain.id, name={"en": chain.name.en, "zh": chain.name.zh},
            steps=list(chain.steps), points=chain.points, starts_at=chain.starts_at,
            ends_at=chain.ends_at, done=done,
            completed=None if done is None else done == len(chain.steps)))
    return CampaignsPublic(lotteries=lotteries, task_chains=chains)


@router.post("/lotteries/{lottery_id}/draws", response_model=DrawPublic,
             status_code=status.HTTP_201_CREATED,
             responses={404: problem("no such lottery"),
                        409: {"description": "the key was used for another request"},
                        422: {"description": "too few points, the day's draws used, closed"},
                        503: {"description": "try again with the same key"}})
async def draw(lottery_id: Annotated[str, Path(max_length=32)], customer: CurrentCustomer,
               desk: DeskDep, mall: MallDep, db: DbDep, key: IdempotencyKey,
               request: Request, response: Response) -> DrawPublic:
    """One draw: its cost is spent and at most one prize is won, never one the pool is out
    of. The same ``Idempotency-Key`` again gives back the same draw."""
    digest = hashlib.sha256(f"draw:{lottery_id}".encode()).hexdigest()
    try:
        result = await desk.draw(customer.username, lottery_id, key, digest)
    except (MallError, InsufficientPoints, KeyReused, DeskUnavailable) as exc:
        raise _refused(exc) from exc
    d = result.draw
    out = DrawPublic(draw_id=d["id"], lottery_id=d["lottery_id"],
                     prize=_prize(mall, d["lottery_id"], d["prize_id"],
                                  await catalogue.prize_stock(db)),
                     points_spent=0 if result.replayed else d["cost"], balance=result.balance,
                     at=as_utc(d["at"]))
    if result.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    else:  # the customer's other windows
        await request.app.state.branch.send_to(customer.username, {
            "type": "drawn", "draw_id": out.draw_id, "lottery_id": out.lottery_id,
            "prize": None if out.prize is None else out.prize.model_dump(),
            "balance": out.balance})
    return out


@router.get("/lotteries/draws", response_model=list[DrawPublic])
async def my_draws(customer: CurrentCustomer, db: DbDep, mall: MallDep) -> list[DrawPublic]:
    """The customer's draws, newest first (``balance`` is today's)."""
    stock = await catalogue.prize_stock(db)
    balance = (await catalogue.account(db, customer.username))["balance"]
    return [DrawPublic(draw_id=d.id, lottery_id=d.lottery_id,
                       prize=_prize(mall, d.lottery_id, d.prize_id, stock),
                       points_spent=d.cost, balance=balance, at=as_utc(d.at))
            for d in await catalogue.draws(db, customer.username)]


# --------------------------------------------------------------------------- administration
@router.post("/admin/mall/items", response_model=StockPublic,
             status_code=status.HTTP_201_CREATED, tags=["admin"],
             responses={409: problem("an item with that id exists")})
async def add_item(body: ItemCreate, _: Admin, db: DbDep) -> StockPublic:
    spec: dict[str, Any] = body.model_dump(exclude_none=True)
    for key in ("starts_at", "ends_at"):
        if key in spec:
            moment = spec[key]
            spec[key] = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()
    try:
        item = parse_item(spec, "item")
        row = await catalogue.add_item(db, item)
        await db.commit()
    except MallFileError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    except StoreError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    return StockPublic(id=row.id, stock=row.stock)


@router.post("/admin/mall/items/{item_id}/stock", response_model=StockPublic, tags=["admin"],
             responses={404: problem("no such item"),
                        409: problem("taking away more than is in stock")})
async def add_stock(item_id: str, body: StockChange, _: Admin, db: DbDep) -> StockPublic:
    try:
        stock = await catalogue.add_stock(db, item_id, body.quantity)
        await db.commit()
    except StoreError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND if "no item" in str(exc)
                            else status.HTTP_409_CONFLICT, str(exc)) from exc
    return StockPublic(id=item_id, stock=stock)


class ConsistencyPublic(BaseModel):
    consistent: bool
    problems: list[str] = Field(description="what is wrong with the books; empty when "
                                            "consistent")


@router.get("/admin/points/consistency", response_model=ConsistencyPublic, tags=["admin"])
async def ledger_consistency(_: Admin, db: DbDep) -> ConsistencyPublic:
    """Whether the books balance: every balance is the sum of its transactions and of its
    lots, none is negative, no stock or prize pool is below zero."""
    problems = await catalogue.consistency(db)
    return ConsistencyPublic(consistent=not problems, problems=problems)
