"""The points mall's rules (积分商城): items, prices by tier, who may redeem what and when.

Pure: the catalogue and the earn rules come from ``scenes/mall.yaml`` (``load_mall``);
``Redemption.check`` decides one redemption from an item, the customer's tier and balance,
what they bought of it before and the time, and raises the domain error that says why not.
Stock and balances live in the store, which calls this under its locks.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from vbank.domain import DomainError
from vbank.domain.flows import Text
from vbank.domain.ledger import TIER_FROM, InsufficientPoints, Tier

MALL_PATH = Path(__file__).resolve().parents[2] / "scenes" / "mall.yaml"
MALL_ASSETS = Path(__file__).resolve().parents[2] / "assets" / "mall"  # item pictures
ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")


class MallError(DomainError):
    """A redemption the mall refuses (the API says how: ``vbank.api.mall``)."""


class OutOfStock(MallError):
    pass


class OverLimit(MallError):
    pass


class NotOnSale(MallError):
    pass


class TierTooLow(MallError):
    pass


class UnknownItem(MallError):
    pass


class MallFileError(DomainError):
    """A mall file that cannot be used: names the file, the entry and what is wrong."""


@dataclass(frozen=True, slots=True)
class TierBenefit:
    discount_pct: int = 0  # off every regular item's price (not flash sales)
    early_access_min: int = 0  # minutes before a flash sale opens to everyone


@dataclass(frozen=True, slots=True)
class EarnRule:
    """Points for something done in the branch; ``per_day`` rules pay once a calendar day."""

    event: str
    points: int
    growth: int
    per_day: bool = False


@dataclass(frozen=True, slots=True)
class Item:
    id: str
    name: Text
    points: int  # price in points, before a tier's discount
    stock: int  # what the mall starts with; the store keeps the live count
    per_customer_limit: int | None = None
    tier: Tier = Tier.STANDARD  # the lowest tier that may redeem it
    starts_at: datetime | None = None  # sale window; None: always
    ends_at: datetime | None = None
    flash: bool = False  # a flash sale (秒杀): no discounts, tiers may enter early
    image: str = ""  # file name under assets/mall
    description: Text = field(default_factory=lambda: Text("", ""))


@dataclass(frozen=True, slots=True)
class Prize:
    """One prize of a lottery: goods (delivered like an order) or ``points`` credited."""

    id: str
    name: Text
    odds: int  # chances in the lottery's ``out_of``
    stock: int  # the pool's opening inventory; the store keeps the live count
    points: int = 0  # a points prize; 0: goods
    image: str = ""


@dataclass(frozen=True, slots=True)
class Lottery:
    """A lucky draw (抽奖): each draw costs ``cost`` points and wins at most one prize.

    A draw rolls once in ``out_of``; each prize owns ``odds`` of those chances, the rest
    win nothing. A roll that lands on a prize whose inventory is gone wins nothing either:
    the odds the customer was shown never grow for the prizes that are left, and no prize
    is ever given that the pool does not hold.
    """

    id: str
    name: Text
    cost: int
    out_of: int
    prizes: tuple[Prize, ...]
    per_customer_per_day: int | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None

    def prize_for(self, roll: int, stock: Mapping[str, int]) -> Prize | None:
        """The prize a roll in ``[0, out_of)`` wins, given what is left of each."""
        if not 0 <= roll < self.out_of:
            raise ValueError(f"roll {roll} outside 0..{self.out_of - 1}")
        edge = 0
        for prize in self.prizes:
            edge += prize.odds
            if roll < edge:
                return prize if stock.get(prize.id, 0) > 0 else None
        return None


@dataclass(frozen=True, slots=True)
class TaskChain:
    """Do these things in this order (each an earn rule's event) for a reward (任务链)."""

    id: str
    name: Text
    steps: tuple[str, ...]
    points: int
    starts_at: datetime | None = None
    ends_at: datetime | None = None

    def progress(self, events: list[tuple[datetime, str]]) -> int:
        """How many steps are done, in order, by ``events`` (time, event), oldest first;
        only events inside the chain's window count."""
        done = 0
        for at, event in sorted(events):
            if done == len(self.steps):
                break
            if (self.starts_at and at < self.starts_at) or (self.ends_at and at >= self.ends_at):
                continue
            if event == self.steps[done]:
                done += 1
        return done


@dataclass(frozen=True, slots=True)
class Mall:
    items: dict[str, Item]
    earn: dict[str, EarnRule]
    tiers: dict[Tier, TierBenefit]
    expiry_days: int | None  # earned points expire after this many days; None: never
    lotteries: dict[str, Lottery] = field(default_factory=dict)
    task_chains: dict[str, TaskChain] = field(default_factory=dict)

    def benefit(self, tier: Tier) -> TierBenefit:
        return self.tiers.get(tier, TierBenefit())

    def expires_at(self, earned_at: datetime) -> datetime | None:
        return None if self.expiry_days is None else earned_at + timedelta(
            days=self.expiry_days)


def price(item: Item, quantity: int, benefit: TierBenefit) -> int:
    """Points for ``quantity`` of ``item``: a tier's discount, rounded up, never on flash sales."""
    each = item.points if item.flash else -(-item.points * (100 - benefit.discount_pct) // 100)
    return each * quantity


def check_redemption(item: Item, quantity: int, tier: Tier, benefit: TierBenefit,
                     stock: int, bought: int, balance: int, now: datetime) -> int:
    """The points this redemption costs, or the error that refuses it.

    Checked in the order a customer would want to hear: can I have it at all (tier, window),
    may I have this many (limit), is there enough (stock), can I pay (points).
    """
    if quantity < 1:
        raise MallError("quantity must be at least 1")
    rank = [t for t, _ in reversed(TIER_FROM)]
    if rank.index(tier) < rank.index(item.tier):
        raise TierTooLow(f"{item.id} is for {item.tier.value} customers and above")
    opens = item.starts_at
    if opens is not None and item.flash:
        opens -= timedelta(minutes=benefit.early_access_min)
    if (opens is not None and now < opens) or (item.ends_at is not None and now >= item.ends_at):
        raise NotOnSale(f"{item.id} is not on sale now")
    if item.per_customer_limit is not None and bought + quantity > item.per_customer_limit:
        raise OverLimit(f"{item.id} is limited to {item.per_customer_limit} per customer; "
                        f"you have {bought}")
    if quantity > stock:
        raise OutOfStock(f"{item.id} is out of stock" if stock == 0 else
                         f"only {stock} of {item.id} left")
    cost = price(item, quantity, benefit)
    if cost > balance:
        raise InsufficientPoints(cost, balance)
    return cost


def day_start(now: datetime) -> datetime:
    """The start of ``now``'s calendar day in the branch's local time, as UTC: where the
    lottery's draws a day are counted from."""
    return now.astimezone().replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)


class UnknownLottery(MallError):
    pass


def check_draw(lottery: Lottery, draws_today: int, balance: int, now: datetime) -> int:
    """The points one draw costs, or the error that refuses it."""
    if (lottery.starts_at is not None and now < lottery.starts_at) or (
            lottery.ends_at is not None and now >= lottery.ends_at):
        raise NotOnSale(f"the {lottery.id} draw is not open now")
    if lottery.per_customer_per_day is not None and draws_today >= lottery.per_customer_per_day:
        raise OverLimit(f"{lottery.id} allows {lottery.per_customer_per_day} draws a day; "
                        f"you have had {draws_today}")
    if lottery.cost > balance:
        raise InsufficientPoints(lottery.cost, balance)
    return lottery.cost


# ---------------------------------------------------------------------- the mall file
def _text(node: Any, where: str) -> Text:
    if isinstance(node, str):
        return Text(node, node)
    if not isinstance(node, Mapping) or not {"en", "zh"} <= set(node):
        raise MallFileError(f"{where} must be a text or {{en, zh}}")
    return Text(str(node["en"]), str(node["zh"]))


def _int(node: Mapping[str, Any], key: str, where: str, default: int | None = None,
         low: int = 0) -> int:
    value = node.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise MallFileError(f"{where}: {key} must be a whole number ≥ {low}")
    return value


def _time(node: Mapping[str, Any], key: str, where: str) -> datetime | None:
    value = node.get(key)
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError as exc:
            raise MallFileError(f"{where}: {key} must be an ISO time") from exc
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise MallFileError(f"{where}: {key} must be an ISO time with a zone")
    return value


ITEM_KEYS = {"id", "name", "points", "stock", "per_customer_limit", "tier", "starts_at",
             "ends_at", "flash", "image", "description"}


def parse_item(node: Any, where: str) -> Item:
    """One catalogue entry, from the mall file or an administrator's request."""
    if not isinstance(node, Mapping):
        raise MallFileError(f"{where} must be a mapping")
    unknown = sorted(set(node) - ITEM_KEYS)
    if unknown:
        raise MallFileError(f"{where}: unknown key {unknown[0]}")
    item_id = node.get("id")
    if not isinstance(item_id, str) or not ID.match(item_id):
        raise MallFileError(f"{where}: id must match {ID.pattern}")
    where = f"{where} ({item_id})"
    try:
        tier = Tier(node.get("tier", "standard"))
    except ValueError as exc:
        raise MallFileError(f"{where}: tier must be one of "
                            f"{', '.join(t.value for t in Tier)}") from exc
    limit = node.get("per_customer_limit")
    item = Item(id=item_id, name=_text(node.get("name", item_id), f"{where}: name"),
                points=_int(node, "points", where, low=1), stock=_int(node, "stock", where),
                per_customer_limit=None if limit is None else _int(node, "per_customer_limit",
                                                                   where, low=1),
                tier=tier, starts_at=_time(node, "starts_at", where),
                ends_at=_time(node, "ends_at", where), flash=bool(node.get("flash", False)),
                image=str(node.get("image", "")),
                description=_text(node.get("description", ""), f"{where}: description"))
    if item.starts_at and item.ends_at and item.ends_at <= item.starts_at:
        raise MallFileError(f"{where}: ends_at must come after starts_at")
    if item.flash and item.starts_at is None:
        raise MallFileError(f"{where}: a flash sale needs starts_at")
    return item


def parse_mall(node: Any, source: str) -> Mall:
    if not isinstance(node, Mapping):
        raise MallFileError(f"{source}: must be a mapping")
    unknown = sorted(set(node) - {"items", "earn", "tiers", "expiry_days", "lotteries",
                                  "task_chains"})
    if unknown:
        raise MallFileError(f"{source}: unknown key {unknown[0]}")
    items: dict[str, Item] = {}
    for i, raw in enumerate(node.get("items") or []):
        item = parse_item(raw, f"{source}: items[{i}]")
        if item.id in items:
            raise MallFileError(f"{source}: items[{i}]: id {item.id} is used twice")
        items[item.id] = item
    earn = {}
    for event, raw in (node.get("earn") or {}).items():
        where = f"{source}: earn.{event}"
        if not isinstance(raw, Mapping):
            raise MallFileError(f"{where} must be a mapping")
        points = _int(raw, "points", where, low=1)
        earn[str(event)] = EarnRule(str(event), points, _int(raw, "growth", where, points),
                                    raw.get("per") == "day")
    tiers = {}
    for name, raw in (node.get("tiers") or {}).items():
        where = f"{source}: tiers.{name}"
        try:
            tier = Tier(name)
        except ValueError as exc:
            raise MallFileError(f"{where}: not a tier") from exc
        tiers[tier] = TierBenefit(_int(raw, "discount_pct", where, 0),
                                  _int(raw, "early_access_min", where, 0))
        if tiers[tier].discount_pct > 90:
            raise MallFileError(f"{where}: discount_pct must be at most 90")
    expiry = node.get("expiry_days")
    lotteries: dict[str, Lottery] = {}
    for i, raw in enumerate(node.get("lotteries") or []):
        lottery = _lottery(raw, f"{source}: lotteries[{i}]")
        if lottery.id in lotteries:
            raise MallFileError(f"{source}: lotteries[{i}]: id {lottery.id} is used twice")
        lotteries[lottery.id] = lottery
    chains: dict[str, TaskChain] = {}
    for i, raw in enumerate(node.get("task_chains") or []):
        chain = _chain(raw, f"{source}: task_chains[{i}]", earn)
        if chain.id in chains:
            raise MallFileError(f"{source}: task_chains[{i}]: id {chain.id} is used twice")
        chains[chain.id] = chain
    return Mall(items, earn, tiers,
                None if expiry is None else _int(node, "expiry_days", source, low=1),
                lotteries, chains)


def _id(node: Mapping[str, Any], where: str) -> str:
    value = node.get("id")
    if not isinstance(value, str) or not ID.match(value):
        raise MallFileError(f"{where}: id must match {ID.pattern}")
    return value


def _keys(node: Any, allowed: set[str], where: str) -> Mapping[str, Any]:
    if not isinstance(node, Mapping):
        raise MallFileError(f"{where} must be a mapping")
    unknown = sorted(set(node) - allowed)
    if unknown:
        raise MallFileError(f"{where}: unknown key {unknown[0]}")
    return node


def _lottery(node: Any, where: str) -> Lottery:
    node = _keys(node, {"id", "name", "cost", "out_of", "prizes", "per_customer_per_day",
                        "starts_at", "ends_at"}, where)
    lottery_id = _id(node, where)
    where = f"{where} ({lottery_id})"
    out_of = _int(node, "out_of", where, low=1)
    prizes: list[Prize] = []
    for i, raw in enumerate(node.get("prizes") or []):
        at = f"{where}: prizes[{i}]"
        raw = _keys(raw, {"id", "name", "odds", "stock", "points", "image"}, at)
        prize_id = _id(raw, at)
        if any(p.id == prize_id for p in prizes):
            raise MallFileError(f"{at}: id {prize_id} is used twice")
        prizes.append(Prize(prize_id, _text(raw.get("name", prize_id), f"{at}: name"),
                            _int(raw, "odds", at, low=1), _int(raw, "stock", at),
                            _int(raw, "points", at, 0), str(raw.get("image", ""))))
    if not prizes:
        raise MallFileError(f"{where}: a lottery needs prizes")
    if sum(p.odds for p in prizes) > out_of:
        raise MallFileError(f"{where}: the prizes' odds add up to more than out_of ({out_of})")
    limit = node.get("per_customer_per_day")
    lottery = Lottery(lottery_id, _text(node.get("name", lottery_id), f"{where}: name"),
                      _int(node, "cost", where, low=1), out_of, tuple(prizes),
                      None if limit is None else _int(node, "per_customer_per_day", where, low=1),
                      _time(node, "starts_at", where), _time(node, "ends_at", where))
    if lottery.starts_at and lottery.ends_at and lottery.ends_at <= lottery.starts_at:
        raise MallFileError(f"{where}: ends_at must come after starts_at")
    return lottery


def _chain(node: Any, where: str, earn: Mapping[str, EarnRule]) -> TaskChain:
    node = _keys(node, {"id", "name", "steps", "points", "starts_at", "ends_at"}, where)
    chain_id = _id(node, where)
    where = f"{where} ({chain_id})"
    steps = node.get("steps")
    if not isinstance(steps, list) or len(steps) < 2:
        raise MallFileError(f"{where}: steps must list at least two events")
    for step in steps:
        if step not in earn:
            raise MallFileError(f"{where}: step {step!r} is not an earn rule's event "
                                f"({', '.join(sorted(earn))})")
    return TaskChain(chain_id, _text(node.get("name", chain_id), f"{where}: name"),
                     tuple(str(s) for s in steps), _int(node, "points", where, low=1),
                     _time(node, "starts_at", where), _time(node, "ends_at", where))


@cache
def load_mall(path: Path = MALL_PATH) -> Mall:
    try:
        with path.open(encoding="utf-8") as f:
            doc = yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as exc:
        raise MallFileError(f"{path}: cannot be read: {exc}") from exc
    return parse_mall(doc, str(path))
