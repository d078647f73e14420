"""The queue as the branch uses it: one interface, in memory or in Redis."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Protocol

from vbank.domain.queue import (
    Assignment,
    BranchQueue,
    QueueError,
    Teller,
    TellerStatus,
    Ticket,
)


class QueueUnavailable(QueueError):
    """The shared queue cannot be reached (Redis restarting, a network fault): nothing was
    changed, and the person is asked to try again."""

    def __init__(self, exc: Exception) -> None:
        super().__init__(f"the branch's queue is not reachable ({type(exc).__name__}); "
                         "please try again in a moment")


class QueueStore(Protocol):
    """Queues and tellers. Every command is atomic: two tellers accepting at once, on one
    node or on two, get different customers."""

    #: the node hosting this process's sessions; "" on a single node
    node: str

    def clock(self) -> float:
        """Seconds on the clock tickets are stamped with (shared by every node)."""
        ...

    async def enqueue(self, session_id: str, customer: str, service: str, priority: int,
                      now: float, customer_name: str = "", tier: str = "",
                      language: str = "en") -> Ticket: ...
    async def requeue_at_head(self, ticket: Ticket) -> Ticket: ...
    async def restore(self, ticket: Ticket) -> None: ...
    async def remove(self, session_id: str) -> Ticket | None: ...
    async def waiting(self, service: str) -> list[Ticket]: ...
    async def position(self, session_id: str) -> int: ...
    async def estimated_wait_s(self, session_id: str, position: int | None = None) -> float: ...
    async def estimate(self, service: str, position: int) -> float: ...
    async def lengths(self) -> dict[str, int]: ...
    async def set_teller(self, teller_id: str, status: TellerStatus,
                         skills: Iterable[str] | None = None) -> Teller: ...
    async def teller(self, teller_id: str) -> Teller | None: ...
    async def tellers(self) -> list[Teller]: ...
    async def remove_teller(self, teller_id: str) -> Teller | None: ...
    async def accept(self, teller_id: str, now: float,
                     service: str | None = None) -> Assignment: ...
    async def release(self, teller_id: str, session_id: str = "") -> None:
        """The call ended: a busy teller is available again (if still in ``session_id``)."""
        ...
    async def bind(self, teller_id: str, session_id: str) -> None: ...
    def learn_handle_time(self, service: str, call_s: float) -> None: ...


class LocalQueue:
    """``domain.queue.BranchQueue`` for one node. No method awaits anything, so each runs
    to its end before another starts, as the pure queue's own methods do."""

    node = ""

    def __init__(self, handle_time_s: Mapping[str, float]) -> None:
        self.q = BranchQueue(handle_time_s)

    def clock(self) -> float:
        return time.monotonic()

    async def enqueue(self, session_id: str, customer: str, service: str, priority: int,
                      now: float, customer_name: str = "", tier: str = "",
                      language: str = "en") -> Ticket:
        return self.q.enqueue(session_id, customer, service, priority, now,
                              customer_name, tier, language)

    async def requeue_at_head(self, ticket: Ticket) -> Ticket:
        return self.q.requeue_at_head(ticket)

    async def restore(self, ticket: Ticket) -> None:
        self.q.restore(ticket)

    async def remove(self, session_id: str) -> Ticket | None:
        return self.q.remove(session_id)

    async def waiting(self, service: str) -> list[Ticket]:
        return self.q.waiting(service)

    async def position(self, session_id: str) -> int:
        return self.q.position(session_id)

    async def estimated_wait_s(self, session_id: str, position: int | None = None) -> float:
        return self.q.estimated_wait_s(session_id, position)

    async def estimate(self, service: str, position: int) -> float:
        return self.q.estimate(service, position)

    async def lengths(self) -> dict[str, int]:
        return self.q.lengths()

    async def set_teller(self, teller_id: str, status: TellerStatus,
                         skills: Iterable[str] | None = None) -> Teller:
        return self.q.set_teller(teller_id, status, skills)

    async def teller(self, teller_id: str) -> Teller | None:
        return self.q.teller(teller_id)

    async def tellers(self) -> list[Teller]:
        return self.q.tellers()

    async def remove_teller(self, teller_id: str) -> Teller | None:
        return self.q.remove_teller(teller_id)

    async def accept(self, teller_id: str, now: float,
                     service: str | None = None) -> Assignment:
        return self.q.accept(teller_id, now, service)

    async def release(self, teller_id: str, session_id: str = "") -> None:
        teller = self.q.teller(teller_id)
        if teller is not None and (not session_id or teller.session_id == session_id):
            self.q.release(teller_id)

    async def bind(self, teller_id: str, session_id: str) -> None:
        teller = self.q.teller(teller_id)
        if teller is not None:
            teller.session_id, teller.status = session_id, TellerStatus.BUSY

    def learn_handle_time(self, service: str, call_s: float) -> None:
        self.q.learn_handle_time(service, call_s)
