"""The queue's rules: priority, first-come-first-served, single assignment, requeue at head."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vbank.domain.queue import (
    AlreadyQueued,
    BranchQueue,
    QueueEmpty,
    TellerNotAvailable,
    TellerStatus,
    Ticket,
    UnknownService,
)

SERVICES = {"loan_signing": 600.0, "risk_assessment": 420.0}


def make_queue() -> BranchQueue:
    return BranchQueue(SERVICES)


def available(q: BranchQueue, teller: str, *skills: str) -> None:
    q.set_teller(teller, TellerStatus.AVAILABLE, skills or list(SERVICES))


def test_first_come_first_served_within_a_priority() -> None:
    q = make_queue()
    for i, name in enumerate(["a", "b", "c"]):
        q.enqueue(f"s{i}", name, "loan_signing", 0, now=float(i))
    available(q, "t1")
    assert q.accept("t1", 10).ticket.customer == "a"
    q.release("t1")
    assert q.accept("t1", 11).ticket.customer == "b"


def test_vip_goes_before_earlier_standard_customers() -> None:
    q = make_queue()
    q.enqueue("s1", "standard", "loan_signing", 0, now=0)
    q.enqueue("s2", "gold", "loan_signing", 1, now=5)
    assert q.position("s2") == 1 and q.position("s1") == 2
    available(q, "t1")
    assert q.accept("t1", 6).ticket.customer == "gold"


def test_teller_drop_requeues_customer_at_head_with_original_wait() -> None:
    q = make_queue()
    first = q.enqueue("s1", "a", "loan_signing", 0, now=0)
    q.enqueue("s2", "vip", "loan_signing", 3, now=1)
    available(q, "t1", "loan_signing")
    taken = q.accept("t1", 2).ticket
    assert taken.customer == "vip"
    q.remove_teller("t1")
    q.requeue_at_head(taken)
    q.enqueue("s3", "other-vip", "loan_signing", 3, now=3)
    assert q.position("s2") == 1  # before the other VIP and before s1
    assert q.position(first.session_id) == 3
    assert q.ticket("s2") is not None and q.ticket("s2").enqueued_at == 1  # type: ignore[union-attr]


def test_teller_only_gets_customers_of_their_skills() -> None:
    q = make_queue()
    q.enqueue("s1", "a", "risk_assessment", 0, now=0)
    available(q, "t1", "loan_signing")
    with pytest.raises(QueueEmpty):
        q.accept("t1", 1)
    available(q, "t2", "risk_assessment")
    assert q.accept("t2", 1).ticket.session_id == "s1"


def test_busy_or_away_teller_cannot_accept() -> None:
    q = make_queue()
    q.enqueue("s1", "a", "loan_signing", 0, now=0)
    q.set_teller("t1", TellerStatus.AWAY, ["loan_signing"])
    with pytest.raises(TellerNotAvailable):
        q.accept("t1", 1)
    available(q, "t2")
    q.accept("t2", 1)
    q.enqueue("s2", "b", "loan_signing", 0, now=2)
    with pytest.raises(TellerNotAvailable):
        q.accept("t2", 3)  # busy with s1 until released
    assert q.set_teller("t2", TellerStatus.AVAILABLE).status is TellerStatus.BUSY


def test_bad_commands_are_refused() -> None:
    q = make_queue()
    with pytest.raises(UnknownService):
        q.enqueue("s1", "a", "mortgage", 0, now=0)
    q.enqueue("s1", "a", "loan_signing", 0, now=0)
    with pytest.raises(AlreadyQueued):
        q.enqueue("s1", "a", "loan_signing", 0, now=0)


def test_estimated_wait_grows_with_position_and_shrinks_with_staff() -> None:
    q = make_queue()
    for i in range(4):
        q.enqueue(f"s{i}", f"c{i}", "loan_signing", 0, now=i)
    one_teller = q.estimated_wait_s("s3")
    q.set_teller("t1", TellerStatus.BUSY, ["loan_signing"])
    q.set_teller("t2", TellerStatus.BUSY, ["loan_signing"])
    assert q.estimated_wait_s("s0") < q.estimated_wait_s("s3") < one_teller
    q.learn_handle_time("loan_signing", 60.0)
    assert q.estimate("loan_signing", 1) < 600.0


# ---------------------------------------------------------------- property tests
ops = st.lists(st.one_of(
    st.tuples(st.just("join"), st.sampled_from(list(SERVICES)), st.integers(0, 2)),
    st.tuples(st.just("accept"), st.integers(0, 3)),
    st.tuples(st.just("leave"), st.integers(0, 40)),
    st.tuples(st.just("release"), st.integers(0, 3)),
    st.tuples(st.just("drop"), st.integers(0, 3)),
), max_size=120)


@settings(max_examples=300, deadline=None)
@given(ops)
def test_no_ticket_assigned_twice_none_lost_priorities_respected(commands: list) -> None:
    """Replays random joins, accepts, leaves, call ends and teller drops against a model."""
    q = make_queue()
    skills = [["loan_signing"], ["risk_assessment"], list(SERVICES), ["loan_signing"]]
    for t in range(4):
        q.set_teller(f"t{t}", TellerStatus.AVAILABLE, skills[t])
    model: dict[str, str] = {}  # session -> waiting | served | gone
    tickets: dict[str, Ticket] = {}
    serving: dict[str, str] = {}  # teller -> session
    for cmd in commands:
        if cmd[0] == "join":
            sid = f"s{len(model)}"
            tickets[sid] = q.enqueue(sid, sid, cmd[1], cmd[2], now=float(len(model)))
            model[sid] = "waiting"
        elif cmd[0] == "accept":
            tid = f"t{cmd[1]}"
            teller = q.teller(tid)
            assert teller is not None
            candidates = [t for s in teller.skills for t in q.waiting(s)]
            try:
                a = q.accept(tid, now=0.0)
            except TellerNotAvailable:
                assert tid in serving
                continue
            except QueueEmpty:
                assert not candidates
                continue
            sid = a.ticket.session_id
            assert model[sid] == "waiting", "a ticket was assigned twice"
            assert a.ticket.key == min(t.key for t in candidates), "priority order broken"
            model[sid] = "served"
            serving[tid] = sid
        elif cmd[0] == "leave":
            sid = f"s{cmd[1]}"
            removed = q.remove(sid)
            assert (removed is not None) == (model.get(sid) == "waiting")
            if removed is not None:
                model[sid] = "gone"
        elif cmd[0] == "release" and f"t{cmd[1]}" in serving:
            model[serving.pop(f"t{cmd[1]}")] = "gone"
            q.release(f"t{cmd[1]}")
        elif cmd[0] == "drop" and f"t{cmd[1]}" in serving:
            sid = serving.pop(f"t{cmd[1]}")
            q.remove_teller(f"t{cmd[1]}")
            tickets[sid] = q.requeue_at_head(tickets[sid])
            model[sid] = "waiting"
            q.set_teller(f"t{cmd[1]}", TellerStatus.AVAILABLE, skills[cmd[1]])
        waiting = {t.session_id for s in SERVICES for t in q.waiting(s)}
        assert waiting == {sid for sid, state in model.items() if state == "waiting"}
        assert sum(q.lengths().values()) == len(waiting)


def test_restore_puts_an_unstarted_assignment_back_in_its_old_place() -> None:
    q = make_queue()
    q.enqueue("s1", "vip", "loan_signing", 2, now=0)
    q.enqueue("s2", "a", "loan_signing", 0, now=1)
    q.enqueue("s3", "b", "loan_signing", 0, now=2)
    available(q, "t1")
    taken = q.accept("t1", 3).ticket
    q.release("t1")
    q.enqueue("s4", "other-vip", "loan_signing", 2, now=4)
    q.restore(taken)
    assert [t.session_id for t in q.waiting("loan_signing")] == ["s1", "s4", "s2", "s3"]
