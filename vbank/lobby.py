"""Presence in the 3D lobby: who is in the hall, where, and the live queue board.

A 3D client sends ``lobby_enter`` when its customer walks in and ``move`` as they walk (a few
times a second is plenty; only the latest position counts). Every ``1 / hz`` seconds
the lobby sends each customer in it what changed: ``presence`` with the avatars that moved
or arrived, ``avatar_left`` for those who went, and ``queue_board`` when a queue's length or
wait changed. Clients interpolate between updates, so 5 Hz looks smooth.

Other customers see a name tag with a first name and an initial ("Alice C."), never a
username or a full name: the hall is a public place. An avatar's id is random and new at
each visit (it once was a hash of the username, which anyone could compute for names they
guess), so it names the avatar for as long as its customer stays in the hall and nothing
more: two visits cannot be linked by it.

With several nodes, customers signed in on other nodes are in the same hall: each node
shares what changed among its own avatars (``share``), and every two seconds all of them,
so that the avatars of a node that stopped go away (``PEER_TIMEOUT_S``) instead of standing
in the hall for ever.
"""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

#: how far from the hall's centre a position may be, in metres (a generous box: the hall's
#: own walls keep the client in; the server only refuses nonsense)
MAX_COORD = 200.0

Send = Callable[[str, dict[str, Any]], Awaitable[None]]
QueueBoard = Callable[[], list[dict[str, Any]]]
Share = Callable[[dict[str, Any]], Awaitable[None]]
#: ticks between two full lists of a node's avatars to the other nodes
FULL_EVERY = 10
#: a node not heard from for this long has its avatars taken out of the hall
PEER_TIMEOUT_S = 6.0


class LobbyError(ValueError):
    """A lobby message that cannot be used; the text says why."""


def name_tag(display_name: str) -> str:
    """"Alice Chen" → "Alice C.": enough to recognise a companion, not to identify a stranger."""
    parts = display_name.split()
    if not parts:
        return "Guest"
    if len(parts) == 1 or not parts[-1][:1].isalpha():
        return parts[0][:24]
    return f"{parts[0][:24]} {parts[-1][0].upper()}."


def position(message: dict[str, Any]) -> tuple[float, float, float]:
    """``x``, ``y`` (metres) and ``heading`` (degrees) from a message, checked."""
    values = []
    for key in ("x", "y", "heading"):
        value = message.get(key, 0.0 if key == "heading" else None)
        if isinstance(value, bool) or not isinstance(value, int | float) \
                or not math.isfinite(value):
            raise LobbyError(f"{message.get('type')} needs a finite number {key!r}")
        values.append(float(value))
    x, y, heading = values
    if abs(x) > MAX_COORD or abs(y) > MAX_COORD:
        raise LobbyError(f"position ({x:.1f}, {y:.1f}) is outside the hall")
    return round(x, 2), round(y, 2), round(heading % 360.0, 1)


@dataclass
class Avatar:
    name: str  # the username: the key, never sent to a client
    tag: str
    x: float
    y: float
    heading: float
    id: str  # what clients know the avatar by (``visit_id``)
    changed: bool = True

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "tag": self.tag, "x": self.x, "y": self.y,
                "heading": self.heading}


def visit_id() -> str:
    """A new avatar's id: random, so it says nothing of who walks in."""
    return "a" + secrets.token_hex(6)


class Lobby:
    def __init__(self, send: Send, queue_board: QueueBoard, hz: float = 5.0) -> None:
        self._send = send
        self._queue_board = queue_board
        self.period_s = 1.0 / hz
        self.avatars: dict[str, Avatar] = {}
        #: avatars of customers signed in on other nodes, and when each node was last heard
        self.peers: dict[str, tuple[Avatar, str]] = {}
        self._heard: dict[str, float] = {}
        #: set with several nodes: sends this node's changes to the others
        self.share: Share | None = None
        self._ticks = 0
        self._left: list[str] = []  # ids of the avatars that left, for the next tick
        self._mine_left: list[str] = []  # who left this node's hall, for the other nodes
        self._board: list[dict[str, Any]] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    # ------------------------------------------------------------------ messages
    def enter(self, username: str, display_name: str,
              message: dict[str, Any]) -> dict[str, Any]:
        """The customer walked in (or back in); returns the ``lobby`` welcome for them."""
        x, y, heading = position(message)
        known = self.avatars.get(username)  # walking in again without leaving: the same visit
        you = Avatar(username, name_tag(display_name), x, y, heading,
                     known.id if known is not None else visit_id())
        self.avatars[username] = you
        others = [*self.avatars.values(), *(a for a, _ in self.peers.values())]
        return {"type": "lobby", "you": you.id, "period_s": self.period_s,
                "avatars": [a.public() for a in others if a.name != username],
                "queue_board": self._queue_board()}

    def move(self, username: str, message: dict[str, Any]) -> None:
        avatar = self.avatars.get(username)
        if avatar is None:
            raise LobbyError("send lobby_enter before moving")
        avatar.x, avatar.y, avatar.heading = position(message)  # the latest wins
        avatar.changed = True

    def leave(self, username: str) -> bool:
        avatar = self.avatars.pop(username, None)
        if avatar is None:
            return False
        self._left.append(avatar.id)
        if self.share is not None:
            self._mine_left.append(username)
        return True

    # ------------------------------------------------------------------ the updates
    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.period_s)
            try:
                await self.tick()
            except Exception:  # a bug of ours must not stop the hall for everyone
                log.exception("lobby update failed")

    def from_peer(self, node: str, payload: dict[str, Any]) -> None:
        """Another node's avatars that moved, arrived or left (all of them when ``full``)."""
        self._heard[node] = time.monotonic()
        moved = payload.get("moved", [])
        if payload.get("full"):
            here = {str(a["name"]) for a in moved}
            for name in [n for n, (_, at) in self.peers.items() if at == node and n not in here]:
                self._peer_left(name)
        for name in payload.get("left", []):  # first: one who left and came back is in moved
            self._peer_left(str(name))
        for a in moved:
            name = str(a["name"])
            known = self.peers.get(name)
            # the id its node gave it (a node of an older version sends none: one is made)
            public = str(a.get("id") or (known[0].id if known is not None else visit_id()))
            if known is not None and (known[0].x, known[0].y, known[0].heading,
                                      known[0].id) == (a["x"], a["y"], a["heading"], public):
                continue  # a full list repeats who did not move
            if known is not None and known[0].id != public:
                self._left.append(known[0].id)  # a new visit: the old avatar is gone
            self.peers[name] = (Avatar(name, str(a["tag"]), float(a["x"]), float(a["y"]),
                                       float(a["heading"]), public), node)

    def _peer_left(self, name: str) -> None:
        gone = self.peers.pop(name, None)
        if gone is not None:
            self._left.append(gone[0].id)

    async def _share(self, moved: list[Avatar]) -> None:
        """Tell the other nodes what changed here (and now and then, everyone here)."""
        if self.share is None:
            return
        now = time.monotonic()
        for node in [n for n, at in self._heard.items() if now - at > PEER_TIMEOUT_S]:
            del self._heard[node]  # stopped: its customers are no longer in the hall
            for name in [n for n, (_, at) in self.peers.items() if at == node]:
                self._peer_left(name)
        self._ticks += 1
        full = self._ticks % FULL_EVERY == 0
        mine_left, self._mine_left = self._mine_left, []
        if full or moved or mine_left:
            shown = list(self.avatars.values()) if full else moved
            await self.share({"full": full, "left": mine_left, "moved": [
                {"name": a.name, "id": a.id, "tag": a.tag, "x": a.x, "y": a.y,
                 "heading": a.heading} for a in shown]})

    async def tick(self) -> None:
        """Send each customer in the hall what changed since the last tick."""
        moved = [a for a in self.avatars.values() if a.changed]
        for avatar in moved:
            avatar.changed = False
        await self._share(moved)
        moved += [a for a, _ in self.peers.values() if a.changed]
        for avatar, _ in self.peers.values():
            avatar.changed = False
        left, self._left = self._left, []
        board = [dict(s) for s in self._queue_board()] if self.avatars else self._board
        board_changed = board != self._board
        self._board = board
        for viewer in list(self.avatars):
            for avatar_id in left:
                await self._send(viewer, {"type": "avatar_left", "id": avatar_id})
            others = [a.public() for a in moved if a.name != viewer]
            if others:
                await self._send(viewer, {"type": "presence", "avatars": others})
            if board_changed:
                await self._send(viewer, {"type": "queue_board", "services": board})
