"""Taking a node that stopped out of the branch's shared state.

A node that dies (``kill -9``, a power cut, a lost network) leaves in Redis what it put
there: its waiting customers' tickets at the front of the queues, its tellers marked
available, tellers of other nodes in calls it hosted, and the directory entries of its
people. Left there, a teller elsewhere would accept a customer whose socket is gone and
stay busy for good, and the digital human would wait for tellers who are not there.

Every node refreshes ``alive:<node>`` each second, with a lifetime of ``node_timeout_s``,
and is a member of the set ``nodes``. A node whose key has expired is presumed dead; the
first live node to take the lock ``reaping:<node>`` removes its part (``reap``) and tells
the people concerned (``vbank.branch.nodes.OtherNodes.node_lost``). A node starting also
reaps its own name: what a previous run under that name left. A node that was only cut off
from Redis for that long notices, when it is back, that its key had expired, and puts its
part back as after a Redis restart. Records in the database are not touched here: a node
ends its own open sessions when it starts again (``store.recovery``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vbank.cluster.node import Cluster
from vbank.cluster.redisqueue import RedisQueue
from vbank.domain.queue import Teller, Ticket


@dataclass
class Reaped:
    """What was taken out for one node."""

    node: str
    #: its waiting customers, out of the queues
    tickets: list[Ticket] = field(default_factory=list)
    #: its tellers, signed out (``session_id`` is the call they were in, if any)
    tellers: list[Teller] = field(default_factory=list)
    #: (teller, session) for tellers of other nodes whose call it hosted, now freed
    calls: list[tuple[str, str]] = field(default_factory=list)
    #: the people signed in on it (a customer among them may have a call elsewhere)
    people: list[str] = field(default_factory=list)
    #: how many sessions it hosted
    sessions: int = 0

    def __bool__(self) -> bool:
        return bool(self.tickets or self.tellers or self.calls or self.people
                    or self.sessions)


async def reap(queue: RedisQueue, cluster: Cluster, node: str,
               services: list[str]) -> Reaped:
    """Take ``node``'s part out of Redis. Each step is atomic on its own and may be run
    again: a reaper that dies half way leaves the rest to the next one."""
    done = Reaped(node)
    homes = await cluster.homes()
    hosted = {sid for sid, where in homes.items() if where == node}
    for name, fields in await queue.teller_records():
        session = fields.get("session", "")
        if fields.get("node") == node:
            teller = await queue.remove_teller(name)
            if teller is not None:
                done.tellers.append(teller)
        elif session and session in hosted:
            await queue.release(name, session)
            done.calls.append((name, session))
    for service in services:
        for ticket in await queue.waiting(service):
            if ticket.node == node and await queue.remove(ticket.session_id) is not None:
                done.tickets.append(ticket)
    done.people = await cluster.forget_people(node)
    done.sessions = await cluster.unhost_node(node)
    await cluster.forget_node(node)
    return done
