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
    """A session that has not ended: queued or in a call."""

    id: str
    reference: str
    customer: str
    customer_name: str
    tier: str
    service: str
    created: float  # monotonic
    state: str = "queued"  # queued | in_call | ended
    teller: str | None = None
    #: the queue ticket from joining, kept so a requeue restores the original arrival order
    ticket: Ticket | None = None
    call_started: float | None = None
    customer_online: bool = True
    #: served by the digital human (no teller); ``agent_started`` once its media is attached
    agent: bool = False
    agent_started: bool = False
    #: asked for (or was sent to) the digital human but it had no capacity yet: retried
    wants_agent: bool = False
    #: asked for a person (or was handed over): never routed to the digital human again
    wants_person: bool = False
    #: counts pairings with the digital human: a media watchdog acts on its own pairing only
    agent_pairing: int = 0
    grace: asyncio.Task[None] | None = field(default=None, repr=False)
    #: the business flow running in this call (kept across teller changes and reconnects)
    run: FlowRun | None = field(default=None, repr=False)
    #: the language the customer chose: the digital human's voice and hearing, the flow's
    #: texts and checks, what tellers are shown (``LANGUAGES``)
    language: str = "en"

    def public(self) -> dict[str, Any]:
        return {"session_id": self.id, "reference": self.reference, "service": self.service,
                "state": self.state, "teller": self.teller, "language": self.language}
