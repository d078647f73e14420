"""A session's life, as rules: who serves the customer, whether they are waiting, what they
asked for, whether their connection is up. No I/O, no clock.

A session is queued, in a call (with a teller, or with the digital assistant) or ended, and
ends once. The hub (``vbank.branch``) asks this core before it tells anyone anything: a
command that breaks a rule raises ``SessionRuleBroken`` and changes nothing.

Rules kept by every command (``tests/unit/test_session_life.py`` checks them against every
sequence of commands):

- in a call with exactly one of a teller or the assistant; waiting, with neither (an ended
  session keeps who served it last, for the hub to tell);
- the assistant's media is started only while it serves the customer;
- an ended session stays ended: every command but the connection's comings and goings is
  refused;
- asking for a person and waiting for the assistant exclude each other;
- each pairing with the assistant has its own number, so a watchdog acts on its own only.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from vbank.domain import DomainError


class SessionRuleBroken(DomainError):
    """A command the session's state does not allow (the hub's bug, or a race it lost)."""


class Phase(enum.StrEnum):
    QUEUED = "queued"
    IN_CALL = "in_call"
    ENDED = "ended"


@dataclass
class SessionLife:
    """One session's state; changed only by its commands."""

    phase: Phase = Phase.QUEUED
    #: the teller serving the customer, in a call with a person
    teller: str | None = None
    #: served by the digital assistant; ``agent_started`` once its media runs
    agent: bool = False
    agent_started: bool = False
    #: asked for (or was sent to) the assistant, which had no room yet: tried again
    wants_agent: bool = False
    #: asked for a person (or was handed over): never routed to the assistant again
    wants_person: bool = False
    #: the customer's signaling connection is up (down: they have a grace period to return)
    customer_online: bool = True
    #: counts pairings with the assistant
    agent_pairing: int = 0

    # ------------------------------------------------------------ people
    def pair_with_teller(self, teller: str) -> None:
        """A teller took the waiting customer."""
        self._require(self.phase is Phase.QUEUED, "only a waiting customer meets a teller")
        if not teller:
            raise SessionRuleBroken("a teller has a name")
        self.phase, self.teller = Phase.IN_CALL, teller

    def teller_dropped(self) -> str:
        """The teller vanished mid-call: the customer waits again, first for a person.
        Returns the teller who was serving."""
        teller = self.teller
        self._require(self.phase is Phase.IN_CALL and teller is not None,
                      "no teller is serving this customer")
        assert teller is not None
        self.teller = None
        self.phase = Phase.QUEUED
        self.wants_person, self.wants_agent = True, False
        return teller

    # ------------------------------------------------------------ the assistant
    def assistant_full(self) -> bool:
        """The assistant had no room for the waiting customer; True the first time (when
        the customer is to be told)."""
        self._require(self.phase is Phase.QUEUED and not self.wants_person,
                      "only a waiting customer who did not ask for a person waits for it")
        first, self.wants_agent = not self.wants_agent, True
        return first

    def pair_with_assistant(self) -> int:
        """The assistant takes the waiting customer; returns this pairing's number."""
        self._require(self.may_meet_assistant,
                      "only a waiting customer who did not ask for a person meets the "
                      "assistant")
        self.phase, self.agent, self.agent_started = Phase.IN_CALL, True, False
        self.wants_agent = False
        self.agent_pairing += 1
        return self.agent_pairing

    def assistant_starting(self) -> None:
        """The assistant's media is being started (so a second offer starts no second)."""
        self._require(self.serving_assistant and not self.agent_started,
                      "the assistant is not waiting to start")
        self.agent_started = True

    def assistant_stopped(self) -> None:
        """The assistant's media did not start, or was stopped to start again."""
        self._require(self.serving_assistant, "the assistant is not serving this customer")
        self.agent_started = False

    def assistant_late(self, pairing: int) -> bool:
        """Whether pairing number ``pairing`` is still waiting for its media to start."""
        return self.serving_assistant and self.agent_pairing == pairing \
            and not self.agent_started

    def back_in_line(self) -> None:
        """The assistant stops serving: the customer waits, first for a person."""
        self._require(self.serving_assistant, "the assistant is not serving this customer")
        self.phase, self.agent, self.agent_started = Phase.QUEUED, False, False
        self.wants_person, self.wants_agent = True, False

    # ------------------------------------------------------------ what the customer asks
    def ask_for_person(self) -> None:
        self._require(self.phase is not Phase.ENDED, "the session has ended")
        self.wants_person, self.wants_agent = True, False

    def ask_for_assistant(self) -> None:
        self._require(self.phase is Phase.QUEUED, "only a waiting customer asks for it")
        self.wants_person = False

    def customer_gone(self) -> bool:
        """The customer's connection went; True if it was up (their grace period starts)."""
        was, self.customer_online = self.customer_online, False
        return was

    def customer_back(self) -> None:
        self.customer_online = True

    # ------------------------------------------------------------ the end
    def end(self) -> Phase:
        """The session ends; returns the phase it ended from."""
        self._require(self.phase is not Phase.ENDED, "the session has already ended")
        was, self.phase = self.phase, Phase.ENDED
        self.agent_started = self.wants_agent = False
        return was

    # ------------------------------------------------------------ reading
    @property
    def may_meet_assistant(self) -> bool:
        """Waiting, and did not ask for a person: the assistant may take them."""
        return self.phase is Phase.QUEUED and not self.wants_person

    @property
    def serving_assistant(self) -> bool:
        return self.phase is Phase.IN_CALL and self.agent

    @property
    def ended(self) -> bool:
        return self.phase is Phase.ENDED

    def _require(self, condition: bool, why: str) -> None:
        if not condition:
            raise SessionRuleBroken(f"{why} (session {self.phase.value})")
