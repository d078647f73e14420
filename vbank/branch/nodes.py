"""What the other nodes tell this one, in multi-node mode (``vbank.cluster``): messages for
people signed in here, queue changes, tellers there taking customers whose calls are here,
people gone with a node; and putting this node's part back after Redis lost it. An inbound
adapter: it sees the hub through ``NodeHub``, never ``Branch`` itself."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vbank.auth import Role
from vbank.branch.board import QueueBoard
from vbank.branch.errors import BranchError
from vbank.branch.outbox import Outbox
from vbank.cluster.node import Cluster
from vbank.cluster.reaper import reap
from vbank.cluster.redisqueue import RedisQueue
from vbank.cluster.store import QueueStore
from vbank.domain.queue import AlreadyQueued, Assignment, TellerStatus, Ticket
from vbank.domain.services import SERVICES
from vbank.live import LiveSession
from vbank.lobby import Lobby
from vbank.store import repo

log = logging.getLogger(__name__)


class NodeHub(Protocol):
    """What the other nodes' messages act on: the hub, seen from here."""

    queue: QueueStore
    outbox: Outbox
    board: QueueBoard
    lobby: Lobby
    live: dict[str, LiveSession]
    #: what this node's tellers chose (status, skills), to put back if Redis loses it
    teller_choices: dict[str, tuple[TellerStatus, list[str]]]

    @property
    def db(self) -> async_sessionmaker[AsyncSession]: ...

    def settle_after_reset(self) -> None: ...

    async def pair(self, teller_id: str, teller_name: str, assignment: Assignment) -> None: ...

    async def teller_dropped(self, live: LiveSession) -> None: ...

    async def customer_dropped(self, live: LiveSession) -> None: ...

    def session_of_customer(self, username: str) -> LiveSession | None: ...


class OtherNodes:
    """This node's side of the cluster's messages."""

    def __init__(self, hub: NodeHub, cluster: Cluster) -> None:
        self.hub = hub
        self.cluster = cluster

    async def from_node(self, kind: str, payload: dict[str, Any]) -> None:
        """What another node tells this one (``Cluster`` calls this on the server's loop)."""
        if kind == "deliver":
            await self.hub.outbox.send_here(str(payload["to"]), payload["message"])
        elif kind == "queue_changed":
            self.hub.board.changed(str(payload.get("service")) or None, share=False)
        elif kind == "assigned":  # a teller there took a customer whose call is here
            teller = str(payload["teller"])
            assignment = Assignment(ticket_from(payload["ticket"]), teller,
                                    float(payload["waited_s"]))
            try:
                await self.hub.pair(teller, str(payload["teller_name"]), assignment)
            except BranchError as exc:
                await self.hub.outbox.send(teller, {"type": "error", "code": exc.code,
                                                    "message": str(exc)})
        elif kind == "lobby":
            self.hub.lobby.from_peer(str(payload.pop("node")), payload)
        elif kind == "teller_gone":
            live = self.hub.live.get(str(payload["session_id"]))
            if live is not None and live.teller == payload["teller"]:
                await self.hub.teller_dropped(live)
        elif kind == "customer_gone":  # their socket on another node closed
            live = self.hub.live.get(str(payload["session_id"]))
            customer = str(payload["customer"])
            if live is not None and live.customer == customer and \
                    customer not in self.hub.outbox.connections and \
                    await self.cluster.where_is(customer) in (None, payload.get("via")):
                await self.hub.customer_dropped(live)

    async def rebuild(self) -> None:
        """Redis lost the branch's shared state (it restarted empty): put back this node's
        part. Who waits is read from the database (sessions hosted here and still queued),
        in their old order and with their old priority; tellers signed in here get back the
        status they chose, and calls hosted here their teller."""
        self.hub.settle_after_reset()
        for username, conn in list(self.hub.outbox.connections.items()):
            await self.cluster.arrived(username)
            if conn.role is Role.TELLER:
                status, skills = self.hub.teller_choices.get(
                    username, (TellerStatus.AWAY, [s for s in conn.skills if s in SERVICES]))
                await self.hub.queue.set_teller(username, status, skills)
        async with self.hub.db.begin() as db:
            rows = await repo.open_sessions(db, self.hub.queue.node)
        requeued = calls = 0
        for row in rows:
            live = self.hub.live.get(row.id)
            if live is None:
                continue  # ended meanwhile
            await self.cluster.host(live.id, live.customer)
            if live.state == "in_call" and live.teller:
                await self.hub.queue.bind(live.teller, live.id)
                calls += 1
            elif row.state == "queued" and live.state == "queued" and live.ticket is not None:
                with contextlib.suppress(AlreadyQueued):
                    await self.hub.queue.restore(live.ticket)
                    requeued += 1
        log.warning("put back into Redis: %d waiting customer(s), %d teller(s), %d call(s)",
                    requeued, sum(1 for c in self.hub.outbox.connections.values()
                                  if c.role is Role.TELLER), calls)
        for service in SERVICES:
            self.hub.board.changed(service)

    async def node_lost(self, node: str) -> None:
        """Node ``node`` stopped without saying so (or this node restarts under its old
        name): its part of the shared state is taken out, and the people it concerns are
        told. Its customers' calls on other nodes get their teller back in line; tellers
        here in its calls are free again."""
        assert isinstance(self.hub.queue, RedisQueue)
        done = await reap(self.hub.queue, self.cluster, node, list(SERVICES))
        if not done:
            return
        log.warning("node %s is gone: %d waiting customer(s) and %d teller(s) taken out, "
                    "%d teller(s) in its calls freed", node, len(done.tickets),
                    len(done.tellers), len(done.calls))
        outcome = "interrupted" if node == self.cluster.node else "node_lost"
        for teller in done.tellers:  # in a call that lives on: the customer goes first
            sid = teller.session_id
            if sid and sid in self.hub.live:
                await self.hub.teller_dropped(self.hub.live[sid])
            elif sid:
                await self.cluster.tell_home(sid, "teller_gone", session_id=sid,
                                             teller=teller.teller_id)
        for person in done.people:  # a customer reached through it: gone with it
            live = self.hub.session_of_customer(person)
            if live is not None and person not in self.hub.outbox.connections:
                await self.hub.customer_dropped(live)
            elif live is None and (sid := await self.cluster.session_of(person)):
                await self.cluster.tell_home(sid, "customer_gone", customer=person,
                                             session_id=sid, via=node)
        for teller_id, sid in done.calls:
            await self.hub.outbox.send(teller_id, {"type": "ended", "session_id": sid,
                                         "outcome": outcome})
            await self.hub.board.send_teller_status(teller_id)
        for service in sorted({t.service for t in done.tickets}):
            self.hub.board.changed(service)
        self.hub.board.changed(None)


def ticket_fields(ticket: Ticket) -> dict[str, Any]:
    """A ticket as JSON, for another node."""
    return dataclasses.asdict(ticket)


def ticket_from(fields: dict[str, Any]) -> Ticket:
    return Ticket(**fields)
