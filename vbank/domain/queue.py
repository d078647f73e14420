"""Automatic call distribution: per-service queues, teller skills and status, VIP priority.

A pure module. The caller passes ``now`` (seconds on any monotonic clock) and reads back
tickets and assignments; it is safe because nothing here awaits: one command runs to the
end before the next starts, so two tellers accepting at once can never get the same ticket.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum

from vbank.domain import DomainError


class QueueError(DomainError):
    """A queue command that cannot be carried out."""


class UnknownService(QueueError):
    def __init__(self, service: str) -> None:
        super().__init__(f"unknown service: {service}")


class AlreadyQueued(QueueError):
    def __init__(self, session_id: str) -> None:
        super().__init__(f"session {session_id} is already queued")


class QueueEmpty(QueueError):
    def __init__(self) -> None:
        super().__init__("no customer is waiting for your skills")


class TellerNotAvailable(QueueError):
    def __init__(self, teller_id: str, status: str) -> None:
        super().__init__(f"teller {teller_id} is {status}, not available")


class TellerStatus(StrEnum):
    AVAILABLE = "available"
    BUSY = "busy"
    AWAY = "away"


@dataclass(slots=True)
class Ticket:
    """A customer's place in one service's queue."""

    session_id: str
    customer: str
    service: str
    priority: int
    enqueued_at: float
    #: arrival order, kept across a requeue so requeued customers stay first-come-first-served
    seq: int
    #: set when a teller dropped the call: the ticket goes before everyone else
    head: bool = False
    #: shown to tellers and supervisors on any node: the customer's name and tier, and the
    #: node that hosts the session (empty on a single node)
    customer_name: str = ""
    tier: str = ""
    node: str = ""
    #: the language the customer is served in (``LANGUAGES``)
    language: str = "en"

    @property
    def key(self) -> tuple[int, int, int]:
        """Smaller is served first: requeued, then higher priority, then earlier arrival."""
        return (0 if self.head else 1, -self.priority, self.seq)


@dataclass(slots=True)
class Teller:
    teller_id: str
    skills: frozenset[str]
    status: TellerStatus = TellerStatus.AWAY
    #: the session this teller is serving, while busy with a call
    session_id: str | None = None


@dataclass(frozen=True, slots=True)
class Assignment:
    """A ticket given to a teller: the session is now theirs."""

    ticket: Ticket
    teller_id: str
    waited_s: float


@dataclass(slots=True)
class _ServiceQueue:
    # heap of (key, session_id); entries of removed tickets stay until they reach the top
    heap: list[tuple[tuple[int, int, int], str]] = field(default_factory=list)
    #: average call length, learned from finished calls
    handle_time_s: float = 300.0


class BranchQueue:
    """The branch's queues and tellers."""

    def __init__(self, handle_time_s: Mapping[str, float]) -> None:
        self._queues = {sid: _ServiceQueue(handle_time_s=t) for sid, t in handle_time_s.items()}
        self._tickets: dict[str, Ticket] = {}
        self._tellers: dict[str, Teller] = {}
        self._seq = 0

    # ----------------------------------------------------------------- customers
    def enqueue(self, session_id: str, customer: str, service: str, priority: int,
                now: float, customer_name: str = "", tier: str = "",
                language: str = "en") -> Ticket:
        """Put a customer at the back of their priority band in ``service``'s queue."""
        if service not in self._queues:
            raise UnknownService(service)
        if session_id in self._tickets:
            raise AlreadyQueued(session_id)
        self._seq += 1
        ticket = Ticket(session_id, customer, service, priority, now, self._seq,
                        customer_name=customer_name, tier=tier, language=language)
        self._push(ticket)
        return ticket

    def requeue_at_head(self, ticket: Ticket) -> Ticket:
        """Put back a customer whose teller dropped: first in line, original wait kept."""
        if ticket.session_id in self._tickets:
            raise AlreadyQueued(ticket.session_id)
        again = replace(ticket, head=True)
        self._push(again)
        return again

    def restore(self, ticket: Ticket) -> None:
        """Undo an assignment that could not go ahead: the ticket takes its old place."""
        if ticket.session_id in self._tickets:
            raise AlreadyQueued(ticket.session_id)
        self._push(ticket)

    def remove(self, session_id: str) -> Ticket | None:
        """Take a customer out of the queue (they left); None if they were not waiting."""
        return self._tickets.pop(session_id, None)

    def ticket(self, session_id: str) -> Ticket | None:
        return self._tickets.get(session_id)

    def waiting(self, service: str) -> list[Ticket]:
        """The tickets of ``service`` in the order they will be served."""
        tickets = [t for t in self._tickets.values() if t.service == service]
        tickets.sort(key=lambda t: t.key)
        return tickets

    def position(self, session_id: str) -> int:
        """1 for the next customer to be served in the ticket's service."""
        ticket = self._tickets[session_id]
        key = ticket.key
        return 1 + sum(
            1 for t in self._tickets.values() if t.service == ticket.service and t.key < key
        )

    def estimated_wait_s(self, session_id: str, position: int | None = None) -> float:
        """The wait of a queued customer at their current (or a given) position."""
        ticket = self._tickets[session_id]
        pos = position if position is not None else self.position(session_id)
        return self.estimate(ticket.service, pos)

    def estimate(self, service: str, position: int) -> float:
        """Rounds of calls ahead of ``position`` times the service's average call length."""
        if service not in self._queues:
            raise UnknownService(service)
        staff = sum(1 for t in self._tellers.values()
                    if service in t.skills and t.status is not TellerStatus.AWAY)
        rounds = math.ceil(position / max(1, staff))
        return rounds * self._queues[service].handle_time_s

    def lengths(self) -> dict[str, int]:
        counts = dict.fromkeys(self._queues, 0)
        for t in self._tickets.values():
            counts[t.service] += 1
        return counts

    # ------------------------------------------------------------------- tellers
    def set_teller(self, teller_id: str, status: TellerStatus,
                   skills: Iterable[str] | None = None) -> Teller:
        """Register a teller or change their status and skills."""
        teller = self._tellers.get(teller_id)
        if teller is None:
            teller = self._tellers[teller_id] = Teller(teller_id, frozenset())
        if skills is not None:
            unknown = [s for s in skills if s not in self._queues]
            if unknown:
                raise UnknownService(unknown[0])
            teller.skills = frozenset(skills)
        if teller.session_id is not None and status is TellerStatus.AVAILABLE:
            # A teller in a call stays busy until the call ends.
            status = TellerStatus.BUSY
        teller.status = status
        return teller

    def teller(self, teller_id: str) -> Teller | None:
        return self._tellers.get(teller_id)

    def tellers(self) -> list[Teller]:
        return list(self._tellers.values())

    def remove_teller(self, teller_id: str) -> Teller | None:
        return self._tellers.pop(teller_id, None)

    def accept(self, teller_id: str, now: float, service: str | None = None) -> Assignment:
        """Give the next customer this teller can serve to them, and mark them busy."""
        teller = self._tellers.get(teller_id)
        if teller is None or teller.status is not TellerStatus.AVAILABLE:
            raise TellerNotAvailable(teller_id, teller.status if teller else "offline")
        skills = [service] if service is not None else sorted(teller.skills)
        if service is not None and service not in teller.skills:
            raise QueueEmpty()
        best: tuple[tuple[int, int, int], str] | None = None
        for sid in skills:
            top = self._peek(sid)
            if top is not None and (best is None or top < best):
                best = top
        if best is None:
            raise QueueEmpty()
        ticket = self._tickets.pop(best[1])
        teller.status = TellerStatus.BUSY
        teller.session_id = ticket.session_id
        return Assignment(ticket, teller_id, max(0.0, now - ticket.enqueued_at))

    def release(self, teller_id: str) -> None:
        """The teller's call ended: a busy teller is available again."""
        teller = self._tellers.get(teller_id)
        if teller is None:
            return
        teller.session_id = None
        if teller.status is TellerStatus.BUSY:
            teller.status = TellerStatus.AVAILABLE

    def learn_handle_time(self, service: str, call_s: float, weight: float = 0.2) -> None:
        """Fold a finished call's length into the service's average (moving average)."""
        q = self._queues[service]
        q.handle_time_s = (1 - weight) * q.handle_time_s + weight * max(call_s, 1.0)

    # ------------------------------------------------------------------ internals
    def _push(self, ticket: Ticket) -> None:
        self._tickets[ticket.session_id] = ticket
        heapq.heappush(self._queues[ticket.service].heap, (ticket.key, ticket.session_id))

    def _peek(self, service: str) -> tuple[tuple[int, int, int], str] | None:
        heap = self._queues[service].heap
        while heap:
            key, session_id = heap[0]
            live = self._tickets.get(session_id)
            if live is not None and live.key == key and live.service == service:
                return heap[0]
            heapq.heappop(heap)  # stale: removed, assigned or requeued with a new key
        return None
