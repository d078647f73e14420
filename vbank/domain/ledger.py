"""The points ledger (积分账本): append-only transactions, a balance that is never negative.

Pure rules, no database and no clock: a ``PointsAccount`` is rebuilt from its transactions
and answers commands with the transaction to append (or a domain error). Earned points form
*lots* with an expiry date; spending uses the lots that expire first, and ``expire`` turns
what is left of an expired lot into an ``expire`` transaction. Growth value (成长值) is kept
apart: it only grows with earning and sets the tier; spending never lowers it.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime

from vbank.domain import DomainError


class LedgerError(DomainError):
    """A points command the ledger refuses."""


class InsufficientPoints(LedgerError):
    def __init__(self, wanted: int, balance: int) -> None:
        super().__init__(f"{wanted} points wanted, {balance} available")
        self.wanted, self.balance = wanted, balance


class KeyReused(LedgerError):
    """The same idempotency key with a different command: refused, nothing changes."""


class Kind(enum.StrEnum):
    EARN = "earn"
    SPEND = "spend"
    REFUND = "refund"
    EXPIRE = "expire"


class Tier(enum.StrEnum):
    STANDARD = "standard"
    SILVER = "silver"
    GOLD = "gold"
    PLATINUM = "platinum"


#: the growth value from which each tier starts, highest first
TIER_FROM = ((Tier.PLATINUM, 20_000), (Tier.GOLD, 5_000), (Tier.SILVER, 1_000),
             (Tier.STANDARD, 0))


def tier_for(growth: int) -> Tier:
    return next(tier for tier, start in TIER_FROM if growth >= start)


@dataclass(frozen=True, slots=True)
class Transaction:
    """One line of the ledger. ``points`` is signed: + earn and refund, − spend and expire."""

    key: str  # idempotency key: the same key is the same transaction
    kind: Kind
    points: int
    at: datetime
    growth: int = 0  # growth value added (earning only)
    expires_at: datetime | None = None  # for earned or refunded points
    reason: str = ""  # what it was for: a rule, an order, a lot
    #: for spends: the lots (by key) and how much of each was used; refunds give them back
    used: tuple[tuple[str, int], ...] = ()


@dataclass
class Lot:
    key: str
    left: int
    expires_at: datetime | None


@dataclass
class PointsAccount:
    """A customer's points, rebuilt from the ledger."""

    customer: str
    transactions: list[Transaction] = field(default_factory=list)
    balance: int = 0
    growth: int = 0
    lots: dict[str, Lot] = field(default_factory=dict)

    @classmethod
    def rebuild(cls, customer: str, transactions: list[Transaction]) -> PointsAccount:
        account = cls(customer)
        for tx in transactions:
            account._apply(tx)
        return account

    @classmethod
    def from_state(cls, customer: str, balance: int, growth: int, lots: list[Lot],
                   known: Iterable[Transaction] = ()) -> PointsAccount:
        """An account as stored (balance, growth, the lots that matter), without its history.

        ``known`` are past transactions a command needs (the spend a refund gives back);
        they are listed, not applied again.
        """
        return cls(customer, list(known), balance, growth, {lot.key: lot for lot in lots})

    @property
    def tier(self) -> Tier:
        return tier_for(self.growth)

    @property
    def version(self) -> int:
        """How many transactions the account has: the optimistic-lock version."""
        return len(self.transactions)

    # ---------------------------------------------------------------- commands
    def earn(self, key: str, points: int, at: datetime, expires_at: datetime | None,
             reason: str, growth: int | None = None) -> Transaction:
        if points < 0 or (points == 0 and not growth):
            raise LedgerError("earned points must be positive")
        return self._append(Transaction(key, Kind.EARN, points, at,
                                        points if growth is None else growth, expires_at,
                                        reason))

    def spend(self, key: str, points: int, at: datetime, reason: str) -> Transaction:
        if points <= 0:
            raise LedgerError("spent points must be positive")
        if key in self._by_key():
            return self._same(Transaction(key, Kind.SPEND, -points, at, reason=reason))
        usable = self._usable(at)
        available = sum(lot.left for lot in usable)
        if points > available:
            raise InsufficientPoints(points, available)
        used: list[tuple[str, int]] = []
        wanted = points
        for lot in usable:  # the lots that expire first are used first
            take = min(lot.left, wanted)
            if take:
                used.append((lot.key, take))
                wanted -= take
            if not wanted:
                break
        return self._append(Transaction(key, Kind.SPEND, -points, at, reason=reason,
                                        used=tuple(used)))

    def refund(self, key: str, spend_key: str, at: datetime, reason: str) -> Transaction:
        """Give back a whole spend (an order cancelled): its points return to their lots."""
        spent = self._by_key().get(spend_key)
        if spent is None or spent.kind is not Kind.SPEND:
            raise LedgerError(f"no spend {spend_key!r} to refund")
        if any(t.kind is Kind.REFUND and t.reason == f"refund:{spend_key}"
               for t in self.transactions if t.key != key):
            raise LedgerError(f"spend {spend_key!r} was already refunded")
        return self._append(Transaction(key, Kind.REFUND, -spent.points, at,
                                        reason=f"refund:{spend_key}", used=spent.used))

    def expire(self, at: datetime) -> list[Transaction]:
        """Expire what is left of every lot past its date (one transaction a lot).

        A lot can expire more than once: an order cancelled after its lot expired gives the
        points back to that lot, and the next run takes them. So the key names the moment
        (to the millisecond) as well as the lot."""
        out = []
        stamp = int(at.timestamp() * 1000)
        keys = self._by_key()
        for lot in list(self.lots.values()):
            if lot.left and lot.expires_at is not None and lot.expires_at <= at:
                key, n = f"expire:{lot.key}@{stamp}", 1
                while key in keys:  # expired, refunded into and expired again at once
                    n += 1
                    key = f"expire:{lot.key}@{stamp}#{n}"
                tx = self._append(Transaction(key, Kind.EXPIRE, -lot.left, at,
                                              reason=f"lot:{lot.key}",
                                              used=((lot.key, lot.left),)))
                keys[key] = tx
                out.append(tx)
        return out

    # ---------------------------------------------------------------- internals
    def _by_key(self) -> dict[str, Transaction]:
        return {t.key: t for t in self.transactions}

    def _usable(self, at: datetime) -> list[Lot]:
        live = [lot for lot in self.lots.values() if lot.left > 0 and (
            lot.expires_at is None or lot.expires_at > at)]
        return sorted(live, key=lambda lot: (lot.expires_at is None,
                                             lot.expires_at or datetime.max.replace(
                                                 tzinfo=at.tzinfo)))

    def _same(self, tx: Transaction) -> Transaction:
        """A retried command: the transaction it made before, if it is the same command."""
        before = self._by_key()[tx.key]
        if (before.kind, before.points, before.reason) != (tx.kind, tx.points, tx.reason):
            raise KeyReused(f"idempotency key {tx.key!r} was used for another command")
        return before

    def _append(self, tx: Transaction) -> Transaction:
        if tx.key in self._by_key():
            return self._same(tx)
        self._apply(tx)
        return tx

    def _apply(self, tx: Transaction) -> None:
        # checked before anything changes: a refused transaction leaves the account as it was
        if self.balance + tx.points < 0:
            raise LedgerError(f"transaction {tx.key} would make the balance negative")
        if tx.kind in (Kind.SPEND, Kind.EXPIRE) and any(
                lot_key not in self.lots or take > self.lots[lot_key].left
                for lot_key, take in tx.used):
            raise LedgerError(f"transaction {tx.key} overdraws its lots")
        if tx.kind is Kind.REFUND and any(lot_key not in self.lots for lot_key, _ in tx.used):
            raise LedgerError(f"transaction {tx.key} refunds to unknown lots")
        if tx.kind is Kind.EARN:
            if tx.points:  # an opening of growth value alone makes no lot
                self.lots[tx.key] = Lot(tx.key, tx.points, tx.expires_at)
            self.growth += tx.growth
        elif tx.kind in (Kind.SPEND, Kind.EXPIRE):
            for lot_key, take in tx.used:
                self.lots[lot_key].left -= take
        elif tx.kind is Kind.REFUND:
            for lot_key, take in tx.used:
                self.lots[lot_key] = replace(self.lots[lot_key],
                                             left=self.lots[lot_key].left + take)
        self.balance += tx.points
        self.transactions.append(tx)
