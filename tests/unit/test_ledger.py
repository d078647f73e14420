"""The points ledger: balances are the sum of transactions and never negative (property
tests), spending uses the lots that expire first, retries are idempotent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from vbank.domain.ledger import (
    InsufficientPoints,
    KeyReused,
    Kind,
    LedgerError,
    PointsAccount,
    Tier,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def day(n: int) -> datetime:
    return T0 + timedelta(days=n)


def test_spending_uses_the_points_that_expire_first_and_expiry_takes_the_rest() -> None:
    a = PointsAccount("alice")
    a.earn("e1", 100, day(0), day(30), "risk_assessed")
    a.earn("e2", 50, day(1), day(10), "contract_signed")
    spend = a.spend("o1", 70, day(2), "order:o1")
    assert spend.used == (("e2", 50), ("e1", 20))
    assert (a.balance, a.growth) == (80, 150)  # growth never falls with spending
    assert a.expire(day(29)) == []
    [expired] = a.expire(day(30))
    assert (expired.kind, expired.points, a.balance) == (Kind.EXPIRE, -80, 0)
    assert a.expire(day(31)) == []  # nothing left to expire twice


def test_a_retried_spend_is_the_same_transaction_and_another_command_is_refused() -> None:
    a = PointsAccount("alice")
    a.earn("e1", 100, day(0), None, "welcome")
    first = a.spend("o1", 60, day(1), "order:o1")
    assert a.spend("o1", 60, day(1), "order:o1") is first and a.balance == 40
    with pytest.raises(KeyReused, match="o1"):
        a.spend("o1", 30, day(1), "order:o1")
    with pytest.raises(InsufficientPoints, match="50 points wanted, 40 available"):
        a.spend("o2", 50, day(1), "order:o2")
    assert a.balance == 40 and a.version == 2


def test_a_refund_returns_the_points_once_to_the_lots_they_came_from() -> None:
    a = PointsAccount("alice")
    a.earn("e1", 100, day(0), day(5), "welcome")
    a.spend("o1", 100, day(1), "order:o1")
    a.refund("r1", "o1", day(2), "cancelled")
    assert a.balance == 100
    with pytest.raises(LedgerError, match="already refunded"):
        a.refund("r2", "o1", day(2), "cancelled")
    [expired] = a.expire(day(5))  # refunded points keep their lot's expiry
    assert expired.points == -100


def test_tiers_follow_growth_value() -> None:
    a = PointsAccount("bob")
    assert a.tier is Tier.STANDARD
    a.earn("e1", 1_000, day(0), None, "x")
    assert a.tier is Tier.SILVER
    a.earn("e2", 100, day(0), None, "campaign", growth=19_000)
    assert a.tier is Tier.PLATINUM
    a.spend("o1", 1_100, day(1), "order")
    assert a.tier is Tier.PLATINUM and a.balance == 0


class LedgerMachine(RuleBasedStateMachine):
    """Any sequence of earns, spends, refunds, retries and expiries keeps the books right."""

    def __init__(self) -> None:
        super().__init__()
        self.account = PointsAccount("alice")
        self.now = 0
        self.spends: list[str] = []
        self.n = 0

    def _key(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}{self.n}"

    @rule(points=st.integers(1, 500), life=st.one_of(st.none(), st.integers(1, 20)))
    def earn(self, points: int, life: int | None) -> None:
        self.account.earn(self._key("e"), points, day(self.now),
                          None if life is None else day(self.now + life), "rule")

    @rule(points=st.integers(1, 700))
    def spend(self, points: int) -> None:
        before = self.account.balance
        key = self._key("o")
        try:
            self.account.spend(key, points, day(self.now), f"order:{key}")
            self.spends.append(key)
        except InsufficientPoints:
            assert self.account.balance == before  # a refused spend changes nothing

    @rule()
    def retry_last_spend(self) -> None:
        if self.spends:
            key = self.spends[-1]
            spent = next(t for t in self.account.transactions if t.key == key)
            before = self.account.version
            self.account.spend(key, -spent.points, spent.at, spent.reason)
            assert self.account.version == before

    @rule(data=st.data())
    def refund(self, data: st.DataObject) -> None:
        if self.spends:
            key = self.spends.pop(data.draw(st.integers(0, len(self.spends) - 1)))
            self.account.refund(self._key("r"), key, day(self.now), "cancelled")

    @rule(days=st.integers(0, 10))
    def time_passes_and_points_expire(self, days: int) -> None:
        self.now += days
        self.account.expire(day(self.now))

    @invariant()
    def books_balance(self) -> None:
        a = self.account
        assert a.balance == sum(t.points for t in a.transactions) >= 0
        assert a.balance == sum(lot.left for lot in a.lots.values())
        assert all(lot.left >= 0 for lot in a.lots.values())
        assert a.growth == sum(t.growth for t in a.transactions)
        # the account rebuilt from its transactions is the same account
        again = PointsAccount.rebuild(a.customer, list(a.transactions))
        assert (again.balance, again.growth) == (a.balance, a.growth)


TestLedgerMachine = LedgerMachine.TestCase
TestLedgerMachine.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)


def test_a_lot_refunded_into_after_it_expired_expires_again_even_at_the_same_moment() -> None:
    a = PointsAccount("alice")
    a.earn("e1", 3, day(0), day(1), "rule")
    a.spend("o1", 1, day(0), "order:o1")
    [first] = a.expire(day(1))
    a.refund("r1", "o1", day(1), "cancelled")  # the point goes back to the expired lot
    [second] = a.expire(day(1))
    assert first.key != second.key and (first.points, second.points) == (-2, -1)
    assert a.balance == 0
