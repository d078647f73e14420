"""Who is signed in on this node, and messages to them: sent here, or through the node they
are signed in on when there are several (``vbank.cluster``)."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from vbank.auth import Role
from vbank.live import Connection

if TYPE_CHECKING:
    from vbank.cluster.node import Cluster


class Outbox:
    """The signaling connections of the people signed in on this node."""

    def __init__(self, cluster: Cluster | None = None) -> None:
        self.connections: dict[str, Connection] = {}
        self.cluster = cluster

    async def send(self, username: str, message: dict[str, Any]) -> None:
        """To a person signed in here or, with several nodes, on whichever node they are
        (nothing if they are signed in nowhere)."""
        if username in self.connections or self.cluster is None:
            await self.send_here(username, message)
        else:
            await self.cluster.deliver(username, message)

    async def send_here(self, username: str, message: dict[str, Any]) -> None:
        """To a person signed in on this node, if they are."""
        conn = self.connections.get(username)
        if conn is not None:
            with contextlib.suppress(Exception):  # a closing socket is handled by disconnect
                await conn.send(message)

    def staff(self) -> list[Connection]:
        """Tellers and supervisors signed in here."""
        return [c for c in self.connections.values()
                if c.role in (Role.TELLER, Role.SUPERVISOR)]
