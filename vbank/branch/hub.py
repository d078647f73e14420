"""The hub: a person's requests (joining, accepting, asking for a person, hanging up), the
media workers' and the other nodes' events, and what each means for the sessions.

Every public coroutine is one thing a person did; it asks the session's rules
(``domain.session``) and the pure queue first, synchronously, and only then awaits I/O, so two
tellers accepting at once still get different customers. What it tells people goes through
the outbox (``outbox``), queue pushes through the board (``board``), evidence through the
sealer (``sealing``), and who the assistant serves is decided by ``routing``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

from prometheus_client import Histogram
from sqlalchemy.ext.asyncio import async_sessionmaker

from vbank.auth import Role
from vbank.branch.assistant import Assistant
from vbank.branch.board import QueueBoard
from vbank.branch.duties import Duties
from vbank.branch.errors import BranchError
from vbank.branch.nodes import OtherNodes, ticket_fields
from vbank.branch.outbox import Outbox
from vbank.branch.routing import Routing
from vbank.branch.sealing import Sealer
from vbank.business import Business
from vbank.cluster.store import LocalQueue, QueueStore, QueueUnavailable
from vbank.config import Settings
from vbank.domain.queue import (
    Assignment,
    QueueEmpty,
    Teller,
    TellerStatus,
)
from vbank.domain.services import LANGUAGES, SERVICES, priority_for_tier
from vbank.domain.session import Phase
from vbank.live import Connection, LiveSession
from vbank.lobby import Lobby
from vbank.media.events import (
    AgentEnd,
    Caption,
    FromMedia,
    HandingOver,
    Interrupted,
    LegClosed,
    LegState,
    Said,
    ServiceRequested,
    Utterance,
    WorkerLost,
)
from vbank.rewards import Rewards
from vbank.rtc import AdmissionRefused, RtcError
from vbank.rtc.call import check_offer_sdp
from vbank.rtc.lag import LoopLagMonitor
from vbank.rtc.worker import MediaPool
from vbank.store import repo
from vbank.store.models import CallSession

if TYPE_CHECKING:
    from vbank.cluster.node import Cluster

log = logging.getLogger(__name__)

#: bucket edges (seconds) of the queue-wait histogram
WAIT_BUCKETS = (5, 15, 30, 60, 120, 300, 600, 1800)
#: after Redis lost the shared state, seconds the digital human leaves waiting customers
#: alone, while every node puts its tellers back (else "no teller signed in" would be true
#: for a moment and send everybody to the avatar)
SETTLE_AFTER_RESET_S = 5.0
#: outcomes a teller can choose; the branch itself also sets customer_left, failed,
#: server_shutdown and (after a crash, ``store.recovery``) interrupted
TELLER_OUTCOMES = ("completed", "customer_left", "referred", "failed")


class Branch:
    """The branch while the server runs."""

    def __init__(self, settings: Settings, sessions: async_sessionmaker,
                 media: MediaPool, lag: LoopLagMonitor, queue: QueueStore | None = None,
                 cluster: Cluster | None = None) -> None:
        self.settings = settings
        self.db = sessions
        self.media = media
        self.lag = lag
        self.queue: QueueStore = queue or LocalQueue(
            {s.id: s.handle_time_s for s in SERVICES.values()})
        #: the other nodes, in multi-node mode (``--redis``); None on a single node
        self.cluster = cluster
        self.routing = Routing(settings, self.queue)
        self.policy = self.routing.policy
        self.live: dict[str, LiveSession] = {}
        self.duties = Duties()
        self.outbox = Outbox(cluster)
        self.connections = self.outbox.connections  # who is signed in here
        self.board = QueueBoard(self.queue, self.outbox, self.live, self.duties, cluster)
        #: seconds waited before a teller, per pairing; bucketed, so memory stays flat
        self.waits = Histogram("vbank_queue_wait_seconds", "time from joining to a teller",
                               buckets=WAIT_BUCKETS, registry=None)
        self._router: asyncio.Future[None] | None = None
        self.business = Business(self)
        self.sealer = Sealer(sessions, settings.data, self.business.seal, self.outbox,
                             self.duties)
        self.rewards: Rewards | None = None  # points for what customers do; set at start
        # who is in the 3D hall
        self.lobby = Lobby(self.outbox.send, lambda: self.board.summary)
        if cluster is not None:  # and in the other nodes' halls, which are the same hall
            self.lobby.share = lambda changes: cluster.broadcast(
                "lobby", node=cluster.node, **changes)
        #: what this node's tellers chose (status, skills), to put back if Redis loses it
        self.teller_choices: dict[str, tuple[TellerStatus, list[str]]] = {}
        self._reset_at: float | None = None  # monotonic time of the last rebuild
        #: the digital assistant's side: who it serves, its hand-overs
        self.assistant = Assistant(self)
        #: what the other nodes tell this one (multi-node mode)
        self.nodes = OtherNodes(self, cluster) if cluster is not None else None

    async def start(self) -> None:
        """Background duties: hand long waits to the digital human."""
        await self.board.refresh()
        self._router = asyncio.ensure_future(self._route_long_waits())
        self.lobby.start()

    async def _route_long_waits(self, every_s: float = 1.0) -> None:
        while not self.duties.closing:
            await asyncio.sleep(every_s)
            try:
                await self.board.refresh()  # waits change as tellers come and go
                if self.routing.agent_enabled:
                    await self._route_once()
            except QueueUnavailable as exc:
                log.warning("routing long waits: %s", exc)

    async def _route_once(self) -> None:
        if self._reset_at is not None and \
                time.monotonic() - self._reset_at < SETTLE_AFTER_RESET_S:
            return
        now = self.queue.clock()
        for sid in SERVICES:
            for ticket in await self.queue.waiting(sid):
                live = self.live.get(ticket.session_id)  # this node's customers only
                if live is not None and await self.routing.to_assistant(live, ticket, now):
                    await self.assistant.serve(live)

    def counters_open(self, now: datetime | None = None) -> bool:
        return self.routing.counters_open(now)

    def settle_after_reset(self) -> None:
        """Redis lost the shared state: the digital human leaves waiting customers alone
        for ``SETTLE_AFTER_RESET_S`` while every node puts its tellers back."""
        self._reset_at = time.monotonic()

    # ------------------------------------------------------------ connections
    async def connect(self, conn: Connection) -> dict[str, Any]:
        """A person signed in on the WebSocket; returns the welcome message."""
        self.connections[conn.username] = conn
        if self.cluster is not None:
            await self.cluster.arrived(conn.username)
        welcome: dict[str, Any] = {"type": "welcome", "user": {
            "name": conn.username, "display_name": conn.display_name,
            "role": conn.role.value, "tier": conn.tier}}
        if conn.role is Role.TELLER:
            welcome["user"]["skills"] = sorted(conn.skills)
        live = self.session_of_customer(conn.username) if conn.role is Role.CUSTOMER else None
        if live is not None:
            live.life.customer_back()
            if live.grace is not None:
                live.grace.cancel()
                live.grace = None
            welcome["session"] = await self._resume_info(live)
        elif conn.role is Role.CUSTOMER and self.cluster is not None:
            # reconnected to this node while their session lives on another
            node, sid = await self._hosted_elsewhere(conn.username)
            if node and sid:
                answer = await self.cluster.ask(node, "reattach", customer=conn.username,
                                                session_id=sid)
                if answer and answer.get("session"):
                    welcome["session"] = answer["session"]
        if conn.role is Role.TELLER:
            if await self.queue.teller(conn.username) is None:
                known = [s for s in conn.skills if s in SERVICES]
                await self.queue.set_teller(conn.username, TellerStatus.AWAY, known)
                self.teller_choices[conn.username] = (TellerStatus.AWAY, known)
            self.duties.spawn(self.board.send_queues())
        elif conn.role is Role.SUPERVISOR:
            self.duties.spawn(self.board.send_queues())
        return welcome

    async def disconnect(self, conn: Connection) -> None:
        """The WebSocket closed: a teller's call is requeued, a customer gets a grace period."""
        if self.connections.get(conn.username) is not conn:
            return  # replaced by a newer connection of the same person
        del self.connections[conn.username]
        if self.duties.closing:
            return
        self.lobby.leave(conn.username)
        if self.cluster is not None:
            await self.cluster.departed(conn.username)
        if conn.role is Role.TELLER:
            self.teller_choices.pop(conn.username, None)
            teller = await self.queue.remove_teller(conn.username)
            sid = teller.session_id if teller is not None else None
            if sid in self.live:
                await self.teller_dropped(self.live[sid])
            elif sid and self.cluster is not None:  # their call is hosted by another node
                await self.cluster.tell_home(sid, "teller_gone", session_id=sid,
                                             teller=conn.username)
            await self.board.send_queues()
        elif conn.role is Role.CUSTOMER:
            live = self.session_of_customer(conn.username)
            if live is not None:
                await self.customer_dropped(live)
            elif self.cluster is not None:  # their session is hosted by another node
                node, sid = await self._hosted_elsewhere(conn.username)
                if node and sid:
                    await self.cluster.tell(node, "customer_gone", customer=conn.username,
                                            session_id=sid, via=self.cluster.node)

    async def customer_dropped(self, live: LiveSession) -> None:
        """The customer's socket went: their session waits ``reconnect_grace_s`` for them."""
        if not live.life.customer_gone():
            return
        live.grace = asyncio.ensure_future(self._grace_then_end(live))
        if live.teller:
            await self.outbox.send(live.teller, {"type": "peer", "state": "reconnecting"})

    async def _hosted_elsewhere(self, customer: str) -> tuple[str | None, str | None]:
        """With several nodes: the node hosting the customer's session and its id, when
        that node is not this one."""
        assert self.cluster is not None
        sid = await self.cluster.session_of(customer)
        node = await self.cluster.home_of(sid) if sid else None
        return (node, sid) if node and node != self.cluster.node else (None, None)

    async def reattach(self, customer: str, session_id: str) -> dict[str, Any]:
        """The customer reconnected to another node: their session (hosted here) goes on,
        reached through that node. A socket of theirs still open here is no longer theirs
        (the caller closes it). Returns what their welcome says of the session."""
        live = self.live.get(session_id)
        if live is None or live.customer != customer:
            return {}
        if self.connections.pop(customer, None) is not None:
            self.lobby.leave(customer)
        live.life.customer_back()
        if live.grace is not None:
            live.grace.cancel()
            live.grace = None
        return {"session": await self._resume_info(live)}

    def replaces(self, conn: Connection) -> Connection | None:
        """The older connection this one supersedes, if the person is signed in twice."""
        return self.connections.get(conn.username)

    # --------------------------------------------------------------- customers
    async def join(self, conn: Connection, service: str, digital_human: bool = False,
                   language: str | None = None) -> None:
        """Queue the customer for ``service``, served in ``language`` (the branch's default
        language when not given)."""
        if service not in SERVICES:
            raise BranchError("unknown_service", f"unknown service: {service}")
        language = self.settings.lang if language is None else language
        if language not in LANGUAGES:
            raise BranchError("bad_message",
                              f"language must be one of {', '.join(LANGUAGES)}")
        if self.session_of_customer(conn.username) is not None:
            raise BranchError("bad_message", "you already have a session; leave it first")
        now = time.monotonic()
        session_id = "s_" + secrets.token_hex(8)
        live = LiveSession(session_id, "VB" + secrets.token_hex(5).upper(), conn.username,
                           conn.display_name, conn.tier, service, now, language=language)
        self.live[session_id] = live  # a second join now sees this one
        resumed = await self.business.resumable(conn.username, service)
        if resumed is not None:
            live.run = resumed.run
            live.run.language = language  # carried on in the language chosen now
        async with self.db.begin() as db:
            await repo.add_session(db, CallSession(
                id=session_id, reference=live.reference, customer=conn.username,
                service=service, language=language, state="queued",
                created_at=repo.utcnow(), tellers=[],
                resumed_from=resumed.session_id if resumed else None,
                node=self.queue.node or None))
        if live.state == "ended":  # the customer left while the session was being stored
            async with self.db.begin() as db:
                row = await repo.get_session(db, session_id)
                if row is not None:
                    row.state, row.outcome, row.ended_at = "ended", "customer_left", \
                        repo.utcnow()
            return
        # Only now in the queue, and told so before any await: tellers and the digital
        # human's router cannot take a customer who has not yet heard they are queued.
        if self.cluster is not None:
            await self.cluster.host(session_id, conn.username)
        live.ticket = await self.queue.enqueue(session_id, conn.username, service,
                                               priority_for_tier(conn.tier), self.queue.clock(),
                                               conn.display_name, conn.tier, language)
        position = await self.queue.position(session_id)
        wait = await self.queue.estimated_wait_s(session_id, position)
        await conn.send({"type": "queued", "session_id": session_id, "service": service,
                         "language": language, "reference": live.reference,
                         "position": position,
                         "estimated_wait_s": wait,
                         **({"resumes": {"session_id": resumed.session_id,
                                         "step": resumed.run.step.id}} if resumed else {})})
        if live.state != "queued":
            return  # taken (or left) while the message was on its way
        if digital_human or await self.routing.agent_should_serve(service):
            await self.assistant.serve(live)
        else:
            self.board.changed(service)

    async def ask_for(self, conn: Connection, who: str) -> None:
        """The customer asks for a person (the digital human hands over; a waiting customer
        is never sent to it) or, while waiting, for the digital human now."""
        live = self.session_of_customer(conn.username)
        if live is None:
            raise BranchError("not_in_session", "you have no session")
        if live.teller:
            raise BranchError("bad_message", "you are already with a teller")
        if who == "digital_human":
            if live.agent:
                raise BranchError("bad_message", "you are already with the digital assistant")
            live.life.ask_for_assistant()
            await self.assistant.serve(live)
            return
        live.life.ask_for_person()
        if live.agent:
            await self.assistant.hands_over(live, "asked")
        else:
            await conn.send({"type": "notice", "message": (
                "You will wait for a teller; you keep your place in the queue.")})

    async def leave(self, conn: Connection) -> None:
        live = self.session_of_customer(conn.username)
        if live is None:
            raise BranchError("not_in_session", "you have no session to leave")
        await self.end(live, "customer_left")

    # ----------------------------------------------------------------- tellers
    async def set_status(self, conn: Connection, status: str,
                         skills: list[str] | None) -> None:
        try:
            wanted = TellerStatus(status)
        except ValueError as exc:
            raise BranchError("bad_message", "status must be available, busy or away") from exc
        if skills is not None and any(s not in SERVICES for s in skills):
            raise BranchError("unknown_service", "skills must be service ids")
        unqualified = sorted(set(skills or ()) - set(conn.skills))
        if unqualified:  # qualifications are the bank's record, not the teller's choice
            raise BranchError("wrong_role", f"you are not qualified for {', '.join(unqualified)}")
        teller = await self.queue.set_teller(conn.username, wanted, skills)
        self.teller_choices[conn.username] = (wanted, sorted(teller.skills))
        await conn.send({"type": "teller", "status": teller.status.value,
                         "skills": sorted(teller.skills)})
        self.board.changed(None)  # the waits change with who serves

    async def accept(self, conn: Connection, service: str | None) -> None:
        """The teller takes the next customer they can serve."""
        if service is not None and service not in SERVICES:
            raise BranchError("unknown_service", f"unknown service: {service}")
        teller = await self.queue.teller(conn.username)
        if teller is None or teller.status is not TellerStatus.AVAILABLE:
            raise BranchError("busy", "set your status to available before accepting")
        refusal = self._admission_refusal() if self.cluster is None else None
        if refusal:  # with several nodes, the node hosting the customer decides
            await self._tell_next_customer(teller, service, refusal)
            raise BranchError("busy", refusal)
        try:
            assignment = await self.queue.accept(conn.username, self.queue.clock(), service)
        except QueueEmpty as exc:
            raise BranchError("queue_empty", str(exc)) from exc
        ticket = assignment.ticket
        if ticket.session_id not in self.live and self.cluster is not None \
                and ticket.node and ticket.node != self.cluster.node:
            # the customer's call is hosted by another node: it pairs them there
            await self.cluster.tell(ticket.node, "assigned", teller=conn.username,
                                    teller_name=conn.display_name,
                                    ticket=ticket_fields(ticket), waited_s=assignment.waited_s)
            return
        await self.pair(conn.username, conn.display_name, assignment)

    async def pair(self, teller_id: str, teller_name: str, assignment: Assignment) -> None:
        """Put a teller (signed in here or on another node) in a call with the customer
        ``assignment`` gave them, on this node, which hosts the customer's session."""
        live = self.live.get(assignment.ticket.session_id)
        if live is None or live.state != "queued":
            await self.queue.release(teller_id)
            raise BranchError("queue_empty", "that customer has just left; please accept "
                                             "again")
        refusal = self._admission_refusal() if self.cluster is not None else None
        try:
            if refusal:
                raise AdmissionRefused(refusal)
            self.media.admit(live.id)
        except AdmissionRefused as exc:
            await self.queue.release(teller_id)
            await self.queue.restore(assignment.ticket)
            await self.outbox.send(live.customer, {"type": "notice", "message": str(exc)})
            raise BranchError("busy", str(exc)) from exc
        self.waits.observe(assignment.waited_s)
        live.life.pair_with_teller(teller_id)
        live.call_started = live.call_started or time.monotonic()
        async with self.db.begin() as db:
            row = await repo.get_session(db, live.id)
            if row is not None:
                row.state, row.teller = "in_call", teller_id
                row.tellers = [*row.tellers, teller_id]
                row.started_at = row.started_at or repo.utcnow()
        if live.state != "in_call" or live.teller != teller_id:
            return  # the customer left (or the teller dropped) while this was being saved
        await self.board.send_teller_status(teller_id)
        paired = {"type": "paired", "session_id": live.id, "service": live.service,
                  "language": live.language}
        await self.outbox.send(live.customer, {**paired, "role": "customer", "peer": {
            "name": teller_name, "role": "teller"}})
        await self.outbox.send(teller_id, {**paired, "role": "teller", "reference": live.reference,
                                     "peer": {"name": live.customer_name, "role": "customer",
                                              "tier": live.tier, "username": live.customer}})
        await self.business.teller_joined(live)
        self.board.changed(live.service)

    async def end_by_teller(self, conn: Connection, outcome: str) -> None:
        live = self.session_of_teller(conn.username)
        if live is None:
            raise BranchError("not_in_session", "you are not in a call")
        if outcome not in TELLER_OUTCOMES:
            raise BranchError("bad_message",
                              f"outcome must be one of {', '.join(TELLER_OUTCOMES)}")
        await self.end(live, outcome)

    # ------------------------------------------------------------------ media
    async def offer(self, conn: Connection, session_id: str, sdp: object) -> str:
        """Answer a participant's SDP offer for their session's media."""
        live = self.live.get(session_id)
        role = "customer" if conn.role is Role.CUSTOMER else "teller"
        if live is None or live.state != "in_call" or (
                live.customer if role == "customer" else live.teller) != conn.username:
            raise BranchError("not_in_session", "no call of yours with that session id")
        try:
            check_offer_sdp(sdp, self.settings.max_sdp_bytes, self.settings.max_sdp_media)
            answer = await self.media.offer(session_id, role, sdp)
            if live.agent and not live.life.agent_started and role == "customer":
                await self.assistant.start_media(live)
            else:
                self.duties.spawn(self.business.media_ready(live))
            return answer
        except RtcError as exc:
            raise BranchError(exc.code, str(exc)) from exc

    def on_media_event(self, got: FromMedia) -> None:
        """Events from the media workers (called on the server's loop)."""
        live = self.live.get(got.session_id or "")
        spawn = self.duties.spawn
        match got.event:
            case LegClosed(role=role, recording=recording) if recording and got.session_id:
                self.sealer.recording_closed(got.session_id, role, recording)
            case LegState(role=role, state=state) if live is not None:
                peer = live.teller if role == "customer" else live.customer
                if peer and state in ("connected", "failed"):
                    shown = "connected" if state == "connected" else "reconnecting"
                    spawn(self.outbox.send(peer, {"type": "peer", "state": shown}))
            case Utterance() as heard if live is not None:
                spawn(self.business.on_speech(live, heard))
            case Said() as said if live is not None:
                spawn(self.business.on_agent_said(live, said))
            case Interrupted() if live is not None:
                spawn(self.business.on_interrupted(live))
            case Caption(speaker=speaker, text=text) as caption if live is not None:
                spawn(self.business.on_caption(live, caption))
                message = {"type": "caption", "speaker": speaker, "text": text}
                spawn(self.outbox.send(live.customer, message))
                # tellers who could take this customer over follow the conversation
                transcript = {**message, "type": "transcript", "session_id": live.id}
                spawn(self._send_transcript(live.service, transcript))
            case HandingOver(reason=reason) if live is not None and live.agent:
                spawn(self.assistant.hands_over(live, reason))
            case ServiceRequested(service=service) if live is not None and live.agent:
                spawn(self.assistant.starts_service(live, service))
            case AgentEnd() if live is not None and live.agent:
                spawn(self.end(live, "completed"))
            case WorkerLost():
                lost = [sid for sid, client in self.media.placement.items()
                        if client.name == got.worker]
                log.error("media worker %s stopped; ending its %d calls", got.worker,
                          len(lost))
                for sid in lost:
                    if sid in self.live:
                        spawn(self.end(self.live[sid], "failed"))

    async def _send_transcript(self, service: str, transcript: dict[str, Any]) -> None:
        for teller in await self.queue.tellers():
            if service in teller.skills:
                await self.outbox.send(teller.teller_id, transcript)

    # ----------------------------------------------------------------- endings
    async def end(self, live: LiveSession, outcome: str) -> None:
        """End a session for everyone: media closed, recordings kept, both sides told."""
        if live.life.ended:
            return
        was_queued = live.life.end() is Phase.QUEUED
        self.live.pop(live.id, None)
        with contextlib.suppress(QueueUnavailable):  # rebuilt without it: the row says ended
            await self.queue.remove(live.id)
        if self.cluster is not None:
            await self.cluster.unhost(live.id, live.customer)
        if live.grace is not None and live.grace is not asyncio.current_task():
            live.grace.cancel()
        if live.teller:
            await self.queue.release(live.teller, live.id)
            await self.board.send_teller_status(live.teller)
            if live.call_started:
                self.queue.learn_handle_time(live.service, time.monotonic() - live.call_started)
        try:
            await self.media.close_session(live.id)
        except RtcError as exc:
            log.warning("closing media of %s: %s", live.id, exc)
        async with self.db.begin() as db:
            row = await repo.get_session(db, live.id)
            if row is not None:
                row.state, row.outcome, row.ended_at = "ended", outcome, repo.utcnow()
        message = {"type": "ended", "session_id": live.id, "outcome": outcome,
                   "reference": live.reference}
        await self.outbox.send(live.customer, message)
        if live.teller:
            await self.outbox.send(live.teller, message)
        if live.call_started:
            await self.sealer.seal_ended(live.id, (live.customer, live.teller), live.reference)
        if was_queued:
            self.board.changed(live.service)
        else:
            await self.board.send_queues()

    async def teller_dropped(self, live: LiveSession) -> None:
        """The teller vanished mid-call: the customer goes first in line, session kept."""
        if live.teller is None or live.life.phase is not Phase.IN_CALL:
            return  # the call had already ended or moved on
        teller = live.life.teller_dropped()
        with contextlib.suppress(RtcError):
            await self.media.close_leg(live.id, "teller")
        if teller:
            await self.queue.release(teller, live.id)
        if live.ticket is not None:
            live.ticket = await self.queue.requeue_at_head(live.ticket)
        async with self.db.begin() as db:
            row = await repo.get_session(db, live.id)
            if row is not None:
                row.state, row.teller = "queued", None
        # first in line for a person (teller_dropped says so); the assistant is offered
        # (ask_for), never imposed
        await self.outbox.send(live.customer, {"type": "requeued", "session_id": live.id,
                                         "position": await self.queue.position(live.id),
                                         "reason": "teller_disconnected",
                                         "assistant": self.routing.agent_enabled})
        self.board.changed(live.service)

    async def hand_over_to_person(self, live: LiveSession) -> None:
        """The customer asked the digital human, mid-flow, for a person."""
        await self.assistant.hand_over_to_person(live)

    async def _grace_then_end(self, live: LiveSession) -> None:
        await asyncio.sleep(self.settings.reconnect_grace_s)
        if not live.life.customer_online:
            await self.end(live, "customer_left")

    async def shutdown(self) -> None:
        """Server stopping: end every call, let recordings finish and be stored."""
        self.duties.stop()
        await self.lobby.stop()
        if self._router is not None:
            self._router.cancel()
        for live in list(self.live.values()):
            await self.end(live, "server_shutdown")
        if self.cluster is not None:  # the other nodes no longer send here
            for conn in list(self.connections.values()):
                await self.cluster.departed(conn.username)
                if conn.role is Role.TELLER:
                    with contextlib.suppress(QueueUnavailable):
                        await self.queue.remove_teller(conn.username)
        await self.duties.finish()

    async def send_to(self, username: str, message: dict[str, Any]) -> None:
        """Send to a signed-in person (nothing if they are not connected)."""
        await self.outbox.send(username, message)


    # ----------------------------------------------------------------- helpers
    def session_of_customer(self, username: str) -> LiveSession | None:
        return next((s for s in self.live.values() if s.customer == username), None)

    def session_of_teller(self, username: str) -> LiveSession | None:
        """The call of a teller hosted on this node."""
        return next((s for s in self.live.values()
                     if s.teller == username and s.state == "in_call"), None)

    async def _resume_info(self, live: LiveSession) -> dict[str, Any]:
        info = live.public()
        if live.state == "queued":
            with contextlib.suppress(KeyError, QueueUnavailable):
                position = await self.queue.position(live.id)
                info.update(position=position, estimated_wait_s=await
                            self.queue.estimated_wait_s(live.id, position))
        elif live.teller:
            teller_conn = self.connections.get(live.teller)
            info["peer"] = {"name": teller_conn.display_name if teller_conn else live.teller,
                            "role": "teller"}
        return info

    def _admission_refusal(self) -> str | None:
        if self.lag.lags(self.settings.admission_max_lag_ms,
                         self.settings.admission_lag_samples):
            return "The branch is very busy right now; the customer keeps their place."
        if not self.media.has_capacity():
            return "Every video line is busy right now; the customer keeps their place."
        return None

    async def _tell_next_customer(self, teller: Teller, service: str | None,
                                  message: str) -> None:
        skills = [service] if service else sorted(teller.skills)
        heads = [w[0] for sid in skills if (w := await self.queue.waiting(sid))]
        if heads:
            nxt = min(heads, key=lambda t: t.key)
            await self.outbox.send(nxt.customer, {"type": "notice", "message": (
                "A teller is ready but the branch is very busy; you keep your place.")})
