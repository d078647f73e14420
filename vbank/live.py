"""What the branch knows of the people signed in and the sessions under way: a signed-in
person's signaling channel (``Connection``) and a session that has not ended
(``LiveSession``). Shared by the hub (``vbank.branch``) and the flows run in calls
(``vbank.business``); it imports neither."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Protocol

from vbank.auth import Role
from vbank.domain.flowrun import FlowRun
from vbank.domain.queue import Ticket
from vbank.domain.session import SessionLife


class Connection(Protocol):
    """A signed-in person's signaling channel (the WebSocket, seen from the branch)."""

    username: str
    role: Role
    display_name: str
    tier: str
    skills: list[str]

    async def send(self, message: dict[str, Any]) -> None: ...


@dataclass
class LiveSession:
    """A session that has not ended: queued or in a call. Who serves it and what the
    customer asked for live in ``life`` (``vbank.domain.session``), changed only through
    its commands; ``state``, ``teller``, ``agent`` ... read it."""

    id: str
    reference: str
    customer: str
    customer_name: str
    tier: str
    service: str
    created: float  # monotonic
    #: the queue ticket from joining, kept so a requeue restores the original arrival order
    ticket: Ticket | None = None
    call_started: float | None = None
    #: who serves the customer and what they asked for: changed only by its commands
    life: SessionLife = field(default_factory=SessionLife)
    grace: asyncio.Task[None] | None = field(default=None, repr=False)
    #: the business flow running in this call (kept across teller changes and reconnects)
    run: FlowRun | None = field(default=None, repr=False)
    #: the language the customer chose: the digital human's voice and hearing, the flow's
    #: texts and checks, what tellers are shown (``LANGUAGES``)
    language: str = "en"

    @property
    def state(self) -> str:
        """``queued``, ``in_call`` or ``ended``."""
        return self.life.phase.value

    @property
    def teller(self) -> str | None:
        return self.life.teller

    @property
    def agent(self) -> bool:
        """Served by the digital assistant (no teller)."""
        return self.life.agent

    @property
    def wants_person(self) -> bool:
        return self.life.wants_person

    @property
    def wants_agent(self) -> bool:
        return self.life.wants_agent

    def public(self) -> dict[str, Any]:
        return {"session_id": self.id, "reference": self.reference, "service": self.service,
                "state": self.state, "teller": self.teller, "language": self.language}
