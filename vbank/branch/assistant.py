"""The digital assistant's side of the hub: taking a waiting customer, starting its media
on theirs, watching that it starts, handing over to a person, and starting the service a
customer asks it for. It sees the hub through ``AssistantHub``, never ``Branch`` itself, and
asks the session's rules (``domain.session``) before each change."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vbank.branch.board import QueueBoard
from vbank.branch.duties import Duties
from vbank.branch.outbox import Outbox
from vbank.branch.routing import Routing
from vbank.business import Business
from vbank.cluster.store import QueueStore
from vbank.config import Settings
from vbank.domain.services import SERVICES
from vbank.live import LiveSession
from vbank.rewards import Rewards
from vbank.rtc import AdmissionRefused, RtcError
from vbank.rtc.worker import MediaPool
from vbank.store import repo

log = logging.getLogger(__name__)


class AssistantHub(Protocol):
    """What the assistant's side uses of the hub."""

    settings: Settings
    media: MediaPool
    queue: QueueStore
    routing: Routing
    outbox: Outbox
    board: QueueBoard
    duties: Duties
    business: Business
    rewards: Rewards | None
    live: dict[str, LiveSession]

    @property
    def db(self) -> async_sessionmaker[AsyncSession]: ...

    async def end(self, live: LiveSession, outcome: str) -> None: ...


class Assistant:
    """Who the digital assistant serves, and its hand-overs."""

    def __init__(self, hub: AssistantHub) -> None:
        self.hub = hub

    async def serve(self, live: LiveSession) -> None:
        """Pair a waiting customer with the digital human, unless they asked for a person
        or were taken (by a teller, or by leaving) while it was being arranged."""
        if not live.life.may_meet_assistant:
            return
        if not self.hub.routing.agent_enabled:
            await self.hub.outbox.send(live.customer, {"type": "notice", "message": (
                "The digital assistant is not available; you keep your place for a teller.")})
            return
        try:
            self.hub.media.admit(live.id)
        except AdmissionRefused:
            if live.life.assistant_full():  # say it once; the router retries every second
                await self.hub.outbox.send(live.customer, {"type": "notice", "message": (
                    "The digital assistant is busy; it will take you in a moment, and you "
                    "keep your place for a teller.")})
            return
        ticket = await self.hub.queue.remove(live.id)
        if ticket is None:
            return  # a teller took the ticket meanwhile: their pairing follows
        if not live.life.may_meet_assistant:
            # they left (their media was closed with the session) or asked for a person
            # while the ticket was being taken: a waiting customer keeps their place
            if not live.life.ended:
                await self.hub.queue.restore(ticket)
            return
        pairing = live.life.pair_with_assistant()
        live.call_started = live.call_started or time.monotonic()
        await self.hub.outbox.send(live.customer, {
            "type": "paired", "session_id": live.id, "service": live.service,
            "language": live.language,
            "role": "customer", "peer": {"name": "vbank digital assistant",
                                         "role": "digital_human"}})
        self.hub.duties.spawn(self._watch_media(live, pairing))
        if self.hub.media.placement.get(live.id) is not None:
            # the customer's media is still up (a teller dropped, or a requeue): the
            # assistant takes it over now; no new offer will come to start it
            with contextlib.suppress(RtcError):
                await self.start_media(live)
        self.hub.board.changed(live.service)

    async def start_media(self, live: LiveSession) -> None:
        """Start the digital human on the customer's connected media (``RtcError``: the
        customer's media is not connected; their next offer starts it)."""
        if live.life.agent_started or not live.life.serving_assistant:
            return  # started already (the customer's offer came first), or no longer theirs
        client = self.hub.media.placement[live.id]
        live.life.assistant_starting()  # before any await: an offer meanwhile starts no second
        scripted = self.hub.business.has_flow(live.service)
        try:
            points = None
            if not scripted and self.hub.rewards is not None:
                points = await self.hub.rewards.facts(live.customer)
            await client.request("start_digital_human", session_id=live.id,
                                 language=live.language, scripted=scripted, points=points)
        except BaseException:
            if live.life.serving_assistant:
                live.life.assistant_stopped()
            raise
        if scripted:
            self.hub.duties.spawn(self.hub.business.start_for_agent(live))

    async def _watch_media(self, live: LiveSession, pairing: int) -> None:
        """A customer never waits long on an assistant whose media does not start: after
        ``agent_media_timeout_s`` they go back to the head of the queue, told why."""
        await asyncio.sleep(self.hub.settings.agent_media_timeout_s)
        if live.life.assistant_late(pairing) and self.hub.live.get(live.id) is live:
            log.warning("the digital human's media for %s did not start within %.0f s: "
                        "back to the head of the queue", live.id,
                        self.hub.settings.agent_media_timeout_s)
            await self.back_in_line(live, {"type": "notice", "message": (
                "The digital assistant could not connect. You are first in line for a "
                "teller. · 数字员工未能接通，您已排在第一位")}, "assistant_unavailable")

    async def back_in_line(self, live: LiveSession, first: dict[str, Any],
                            reason: str | None = None) -> None:
        """The assistant stops serving the customer, who goes first in line for a person,
        session kept; ``first`` is what they are told before ``requeued``."""
        if not live.life.serving_assistant:
            return  # the session ended, or was handed over, while this was decided
        live.life.back_in_line()
        client = self.hub.media.placement.get(live.id)
        if client is not None:
            with contextlib.suppress(RtcError):
                await client.request("stop_digital_human", session_id=live.id)
        if live.ticket is not None:
            live.ticket = await self.hub.queue.requeue_at_head(live.ticket)
        await self.hub.outbox.send(live.customer, first)
        await self.hub.outbox.send(live.customer, {"type": "requeued", "session_id": live.id,
                                         "position": await self.hub.queue.position(live.id),
                                         **({"reason": reason} if reason else {})})
        self.hub.board.changed(live.service)

    async def hand_over_to_person(self, live: LiveSession) -> None:
        """The customer asked the digital human, mid-flow, for a person: first in line, the
        flow's state kept for the teller."""
        if live.life.ended:
            return
        live.life.ask_for_person()
        await self.hands_over(live, "asked")

    async def hands_over(self, live: LiveSession, reason: str) -> None:
        """The digital human passes the customer to a person: first in line, session kept."""
        if not live.agent or live.state != "in_call":
            return  # already handed over (the customer asked while the avatar decided to)
        await self.back_in_line(live, {"type": "handed_over", "session_id": live.id,
                                        "reason": reason})

    async def starts_service(self, live: LiveSession, service: str) -> None:
        """The customer asked the digital human for a service: the same call, session and
        recording go on with it. The assistant runs the service's flow where it has one (the
        flow a teller would run); otherwise the customer is first in line for a teller of
        that service, told so (the assistant has said it)."""
        if service not in SERVICES or service == live.service or not live.agent \
                or live.state != "in_call":
            return
        previous, live.service = live.service, service
        async with self.hub.db.begin() as db:
            row = await repo.get_session(db, live.id)
            if row is not None:
                row.service = service
        await self.hub.business.service_changed(live, previous)
        await self.hub.outbox.send(live.customer, {"type": "service", "session_id": live.id,
                                         "service": service, "previous": previous})
        if live.ticket is not None:
            live.ticket = dataclasses.replace(live.ticket, service=service)
        if not self.hub.business.has_flow(service):
            await self.back_in_line(live, {"type": "notice", "message": (
                "You are first in line for a teller for your new service. · "
                "您已优先排队等候人工柜员办理新业务")}, "service_changed")
            self.hub.board.changed(previous)
            return
        client = self.hub.media.placement.get(live.id)
        try:
            if client is None:
                raise RtcError("the customer's media is not connected")
            await client.request("stop_digital_human", session_id=live.id)
            if live.life.serving_assistant:  # still theirs once stopped
                live.life.assistant_stopped()
                await self.start_media(live)
        except RtcError as exc:
            log.warning("the assistant could not start %s for %s: %s", service, live.id, exc)
            await self.back_in_line(live, {"type": "notice", "message": (
                "The digital assistant could not start this service. You are first in line "
                "for a teller. · 数字员工无法办理此业务，您已排在第一位")},
                "assistant_unavailable")
        self.hub.board.changed(previous)
