"""What waiting customers and the staff see of the queues: each customer's place and wait,
the tellers' and supervisors' view of every queue, the tellers' own status, and the lobby's
board. Changes are gathered for ``QUEUE_UPDATE_S`` and go out as one update."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from vbank.auth import Role
from vbank.branch.duties import Duties
from vbank.branch.outbox import Outbox
from vbank.cluster.store import QueueStore, QueueUnavailable
from vbank.domain.services import SERVICES
from vbank.live import LiveSession

if TYPE_CHECKING:
    from vbank.cluster.node import Cluster

log = logging.getLogger(__name__)

#: seconds within which queue changes are gathered into one update to customers and tellers
QUEUE_UPDATE_S = 0.1


class QueueBoard:
    """Pushes the queues to the people they concern."""

    def __init__(self, queue: QueueStore, outbox: Outbox, live: Mapping[str, LiveSession],
                 duties: Duties, cluster: Cluster | None = None) -> None:
        self.queue = queue
        self.outbox = outbox
        self.live = live  # this node's sessions: who is with the digital human
        self.duties = duties
        self.cluster = cluster
        #: each service's queue length and wait, as last read (the lobby's board, metrics)
        self.summary: list[dict[str, Any]] = []
        #: services whose queue changed since the last update went out ("": only the waits)
        self._dirty: set[str] = set()
        self._flusher: asyncio.Future[Any] | None = None

    def changed(self, service: str | None, share: bool = True) -> None:
        """Tell waiting customers their new place, and tellers the new queue — soon, not
        now: changes within ``QUEUE_UPDATE_S`` of each other go out as one update, so a busy
        queue costs a few broadcasts a second instead of one per join and accept (with 200
        waiting and 20 tellers, each broadcast is 200 ``queue`` messages and 20 snapshots).
        ``None``: no queue changed, but the waits did (a teller came, went or paused).
        With several nodes, the others are told too: they update the people signed in
        there (``share=False`` when this change came from another node)."""
        self._dirty.add(service or "")
        if share and self.cluster is not None:
            self.duties.spawn(self.cluster.broadcast("queue_changed", service=service or ""))
        if self._flusher is None or self._flusher.done():
            self._flusher = self.duties.spawn(self._flush())

    async def _flush(self) -> None:
        while self._dirty and not self.duties.closing:
            dirty, self._dirty = self._dirty, set()
            try:
                for service in sorted(dirty - {""}):
                    waiting = await self.queue.waiting(service)
                    for position, ticket in enumerate(waiting, start=1):
                        if ticket.customer in self.outbox.connections:  # others: their node
                            await self.outbox.send_here(ticket.customer, {
                                "type": "queue", "session_id": ticket.session_id,
                                "position": position, "estimated_wait_s":
                                    await self.queue.estimate(service, position)})
                await self.refresh()
                await self.send_queues()
            except QueueUnavailable as exc:
                log.warning("queue update not sent: %s", exc)
            await asyncio.sleep(QUEUE_UPDATE_S)  # what changes meanwhile goes out together

    async def refresh(self) -> list[dict[str, Any]]:
        """Each service's queue and estimated wait, as the lobby's board shows them."""
        lengths = await self.queue.lengths()
        self.summary = [{"id": s.id, "name": {"en": s.name_en, "zh": s.name_zh},
                       "length": lengths[s.id],
                       "estimated_wait_s": round(await self.queue.estimate(
                           s.id, lengths[s.id] + 1))}
                      for s in SERVICES.values()]
        return self.summary

    async def queues(self) -> list[dict[str, Any]]:
        """Each queue with who waits, and who is with the digital human (on this node)."""
        now, wall = time.monotonic(), self.queue.clock()
        with_agent = [s for s in self.live.values() if s.agent and s.state == "in_call"]
        return [{"id": sid, "length": len(waiting), "waiting": [
            {"session_id": t.session_id, "customer": t.customer_name, "tier": t.tier,
             "language": t.language, "waited_s": round(wall - t.enqueued_at, 1)}
            for t in waiting],
            "with_digital_human": [
                {"session_id": s.id, "customer": s.customer_name, "language": s.language,
                 "since_s": round(now - (s.call_started or now), 1)}
                for s in with_agent if s.service == sid]}
            for sid in SERVICES for waiting in [await self.queue.waiting(sid)]]

    async def tellers(self) -> list[dict[str, Any]]:
        """Every signed-in teller's state, for supervisors."""
        return [{"name": t.teller_id, "status": t.status.value, "skills": sorted(t.skills),
                 "session_id": t.session_id} for t in await self.queue.tellers()]

    async def send_queues(self) -> None:
        """The queues to the tellers and supervisors signed in on this node."""
        staff = self.outbox.staff()
        if not staff:
            return
        message = {"type": "queues", "services": await self.queues()}
        tellers = {"type": "tellers", "tellers": await self.tellers()}
        for conn in staff:
            await self.outbox.send_here(conn.username, message)
            if conn.role is Role.SUPERVISOR:
                await self.outbox.send_here(conn.username, tellers)

    async def send_teller_status(self, username: str) -> None:
        """A teller's own status and skills, to them."""
        teller = await self.queue.teller(username)
        if teller is not None:
            await self.outbox.send(username, {"type": "teller", "status": teller.status.value,
                                              "skills": sorted(teller.skills)})
