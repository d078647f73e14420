"""A session's life without a server: the rules of vbank.domain.session under every sequence
of commands (hypothesis), and the journeys the hub takes through them."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from vbank.domain.session import Phase, SessionLife, SessionRuleBroken


class SessionMachine(RuleBasedStateMachine):
    """Any command at any time: each either keeps the rules or is refused and changes
    nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.life = SessionLife()
        self.ended = False
        self.pairings: list[int] = []

    def attempt(self, command: Callable[[], Any]) -> Any:
        before = dataclasses.replace(self.life)
        try:
            return command()
        except SessionRuleBroken:
            assert self.life == before, "a refused command changed the session"
            return None

    @rule(teller=st.sampled_from(["tina", "tom"]))
    def teller_takes(self, teller: str) -> None:
        queued = self.life.phase is Phase.QUEUED
        self.attempt(lambda: self.life.pair_with_teller(teller))
        if queued:
            assert self.life.teller == teller

    @rule()
    def teller_drops(self) -> None:
        serving = self.life.teller if self.life.phase is Phase.IN_CALL else None
        dropped = self.attempt(self.life.teller_dropped)
        assert dropped == serving
        if serving:  # first in line for a person, never pushed to the assistant
            assert self.life.phase is Phase.QUEUED and self.life.wants_person

    @rule()
    def assistant_full(self) -> None:
        self.attempt(self.life.assistant_full)

    @rule()
    def assistant_takes(self) -> None:
        allowed = self.life.may_meet_assistant  # what the hub asks before and after awaits
        pairing = self.attempt(self.life.pair_with_assistant)
        assert (pairing is not None) == allowed
        if pairing is not None:
            assert not self.pairings or pairing > self.pairings[-1]
            self.pairings.append(pairing)

    @rule()
    def assistant_starts(self) -> None:
        self.attempt(self.life.assistant_starting)

    @rule()
    def assistant_stops(self) -> None:
        self.attempt(self.life.assistant_stopped)

    @rule()
    def assistant_hands_over(self) -> None:
        self.attempt(self.life.back_in_line)

    @rule()
    def customer_asks_for_a_person(self) -> None:
        self.attempt(self.life.ask_for_person)

    @rule()
    def customer_asks_for_the_assistant(self) -> None:
        self.attempt(self.life.ask_for_assistant)

    @rule()
    def customer_connection_goes(self) -> None:
        was = self.life.customer_online
        assert self.life.customer_gone() is was
        assert not self.life.customer_online

    @rule()
    def customer_connection_returns(self) -> None:
        self.life.customer_back()

    @rule()
    def session_ends(self) -> None:
        was = self.attempt(self.life.end)
        assert (was is None) is self.ended, "a session ends once"
        self.ended = True

    @invariant()
    def one_server_in_a_call_and_none_while_waiting(self) -> None:
        life = self.life
        if life.phase is Phase.IN_CALL:
            assert (life.teller is not None) != life.agent
        if life.phase is Phase.QUEUED:
            assert life.teller is None and not life.agent

    @invariant()
    def media_started_only_while_the_assistant_serves(self) -> None:
        assert not self.life.agent_started or self.life.serving_assistant

    @invariant()
    def ended_stays_ended(self) -> None:
        assert (self.life.phase is Phase.ENDED) is self.ended

    @invariant()
    def a_person_asked_for_is_not_the_assistant_waited_for(self) -> None:
        assert not (self.life.wants_person and self.life.wants_agent)

    @invariant()
    def a_watchdog_acts_on_its_own_pairing_only(self) -> None:
        for old in self.pairings[:-1]:
            assert not self.life.assistant_late(old)


TestSessionMachine = SessionMachine.TestCase
TestSessionMachine.settings = settings(max_examples=150, stateful_step_count=40,
                                       deadline=None)


def test_a_customer_the_assistant_hands_over_waits_first_for_a_person() -> None:
    life = SessionLife()
    assert life.assistant_full() is True  # told once that it is busy
    assert life.assistant_full() is False
    pairing = life.pair_with_assistant()
    assert not life.wants_agent and life.assistant_late(pairing)
    life.assistant_starting()
    assert not life.assistant_late(pairing)
    with pytest.raises(SessionRuleBroken, match="not waiting to start"):
        life.assistant_starting()  # a second offer starts no second assistant
    life.back_in_line()
    assert (life.phase, life.agent, life.wants_person) == (Phase.QUEUED, False, True)
    life.pair_with_teller("tina")
    assert life.end() is Phase.IN_CALL
    assert life.teller == "tina"  # the hub still tells the teller who served


def test_an_ended_session_refuses_everything_but_the_connection() -> None:
    life = SessionLife()
    life.end()
    for command in (lambda: life.pair_with_teller("tina"), life.pair_with_assistant,
                    life.ask_for_person, life.end, life.assistant_full):
        with pytest.raises(SessionRuleBroken, match="ended"):
            command()
    assert life.customer_gone() is True
    assert life.customer_gone() is False  # one grace period, not two
