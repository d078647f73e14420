"""Who the digital human serves: the policy an administrator or supervisor sets while the
branch runs, and the rules that send a waiting customer to the assistant."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from vbank.cluster.store import QueueStore
from vbank.config import Settings
from vbank.domain.queue import TellerStatus, Ticket
from vbank.domain.services import SERVICES
from vbank.live import LiveSession


@dataclass
class BranchPolicy:
    """What an administrator or supervisor changes while the branch runs.

    ``counters``: ``hours`` follows ``teller_hours``; ``open`` and ``closed`` override it
    (closed sends every new customer to the digital human). ``queue_threshold_s``: the wait
    before the digital human takes over (``None``: the setting, else each service's own).
    """

    counters: str = "hours"
    queue_threshold_s: float | None = None
    digital_human: bool = True


class Routing:
    """The policy, read against the settings and the tellers signed in."""

    def __init__(self, settings: Settings, queue: QueueStore) -> None:
        self.settings = settings
        self.queue = queue
        self.policy = BranchPolicy(queue_threshold_s=settings.queue_threshold_s,
                                   digital_human=settings.digital_human)

    @property
    def agent_enabled(self) -> bool:
        """The digital human is loaded and switched on."""
        return self.settings.digital_human and self.policy.digital_human

    def counters_open(self, now: datetime | None = None) -> bool:
        if self.policy.counters != "hours":
            return self.policy.counters == "open"
        return self.settings.tellers_on_duty(now or datetime.now())

    def threshold_s(self, service: str) -> float:
        limit = self.policy.queue_threshold_s
        return SERVICES[service].queue_threshold_s if limit is None else limit

    async def agent_should_serve(self, service: str) -> bool:
        """Nobody could serve this queue soon: counters closed, or no teller with the skill
        signed in and at work (available or in a call). Then waiting is pointless and the
        digital human takes the customer."""
        return self.agent_enabled and (
            not self.counters_open()
            or not any(service in t.skills and t.status is not TellerStatus.AWAY
                       for t in await self.queue.tellers()))

    async def to_assistant(self, live: LiveSession, ticket: Ticket, now: float) -> bool:
        """Whether a waiting customer goes to the digital human now: never once they asked
        for a person; at once if they asked for it, or nobody could serve them soon; else
        once they have waited ``threshold_s`` and are not next in line."""
        return not live.wants_person and (
            live.wants_agent or await self.agent_should_serve(ticket.service) or (
                not ticket.head and now - ticket.enqueued_at > self.threshold_s(ticket.service)))
