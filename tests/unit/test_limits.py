"""The sliding windows behind the branch's rate limits, with the clock given."""

from __future__ import annotations

import asyncio

import pytest

from vbank.config import Settings
from vbank.limits import PRUNE_EVERY, Limits, Window


def test_a_window_allows_its_limit_then_says_how_long_to_wait() -> None:
    w = Window(limit=3, window_s=60)
    assert [w.take("a", t) for t in (0.0, 10.0, 20.0)] == [None, None, None]
    assert w.take("a", 30.0) == pytest.approx(30.0)  # the first leaves the window at 60
    assert w.take("b", 30.0) is None  # another key has its own count
    assert w.take("a", 60.0) is None  # the window slid past the first event
    assert w.take("a", 61.0) == pytest.approx(9.0)


def test_blocked_does_not_count_and_refused_takes_do_not_extend_the_wait() -> None:
    w = Window(limit=2, window_s=10)
    w.record("k", 0.0)
    assert w.blocked("k", 1.0) is None and w.blocked("k", 1.0) is None
    w.record("k", 1.0)
    waits = [w.take("k", t) for t in (2.0, 3.0, 4.0)]
    assert waits == [pytest.approx(8.0), pytest.approx(7.0), pytest.approx(6.0)]
    assert w.take("k", 10.0) is None


def test_quiet_keys_are_forgotten() -> None:
    w = Window(limit=1, window_s=1)
    for i in range(PRUNE_EVERY - 1):
        w.record(f"k{i}", float(i) * 0.0001)
    assert len(w) == PRUNE_EVERY - 1
    w.record("late", 100.0)  # the event that makes the window look for quiet keys
    assert len(w) == 1


def test_a_forgiven_event_gives_its_place_back() -> None:
    w = Window(limit=2, window_s=10)
    assert w.take("k", 0.0) is None and w.take("k", 1.0) is None
    w.forgive("k", 1.0)
    assert w.take("k", 2.0) is None
    assert w.take("k", 3.0) == pytest.approx(7.0)
    w.forgive("k", 0.5)  # never counted: nothing to take back
    w.forgive("other", 0.0)
    assert w.take("k", 4.0) == pytest.approx(6.0)


async def test_login_failures_block_the_user_and_the_address_and_a_success_does_not_count(
        ) -> None:
    limits = Limits(Settings(login_failures_per_user=2, login_failures_per_address=3,
                             logins_per_address_per_minute=1000))
    right = await limits.login_attempt("Alice", "10.0.0.1")
    await limits.login_succeeded(right)
    for _ in range(2):  # two wrong passwords: left counted
        assert (await limits.login_attempt("Alice", "10.0.0.1")).wait is None
    # the name, however written
    assert (await limits.login_attempt("alice", "10.0.0.2")).wait is not None
    # bob from there: 2 of 3 failures
    assert (await limits.login_attempt("bob", "10.0.0.1")).wait is None
    # the address is used up
    assert (await limits.login_attempt("carol", "10.0.0.1")).wait is not None
    assert (await limits.login_attempt("carol", "10.0.0.9")).wait is None


async def test_logins_at_once_are_counted_before_any_password_is_checked() -> None:
    limits = Limits(Settings(login_failures_per_user=5))
    attempts = await asyncio.gather(*(limits.login_attempt("bob", f"10.0.0.{i}")
                                      for i in range(15)))
    going = [a for a in attempts if a.wait is None]
    assert len(going) == 5  # the rest wait, whatever the first five turn out to be
    assert all(a.counted == () for a in attempts if a.wait is not None)
    for attempt in going[:2]:  # two were right: their places come back
        await limits.login_succeeded(attempt)
    later = [await limits.login_attempt("bob", "10.0.1.1") for _ in range(3)]
    assert [a.wait is None for a in later] == [True, True, False]


async def test_a_login_refused_for_its_address_does_not_count_for_its_user() -> None:
    limits = Limits(Settings(login_failures_per_user=2, login_failures_per_address=1))
    assert (await limits.login_attempt("bob", "10.0.0.1")).wait is None
    assert (await limits.login_attempt("carol", "10.0.0.1")).wait is not None
    assert (await limits.login_attempt("carol", "10.0.0.2")).wait is None
    assert (await limits.login_attempt("carol", "10.0.0.3")).wait is None
    assert (await limits.login_attempt("carol", "10.0.0.4")).wait is not None


async def test_sockets_are_counted_per_address() -> None:
    limits = Limits(Settings(ws_per_address=2))
    assert await limits.open_socket("a") and await limits.open_socket("a")
    assert not await limits.open_socket("a") and await limits.open_socket("b")
    await limits.close_socket("a")
    assert limits.sockets("a") == 1 and await limits.open_socket("a")
