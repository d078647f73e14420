"""Other customers drawn in the hall: one avatar with a name tag per id in ``Presence``.

Thin: ``Crowd.sync`` makes the scene graph match ``Presence.spots(now)`` — an avatar for each
newcomer, none for those who left, everyone where the interpolation puts them. Run it once
a frame; the motion itself is computed (and tested) in ``presence``.
"""

from __future__ import annotations

import zlib

from panda3d.core import NodePath

from client.lobby.avatar import build_avatar
from client.lobby.presence import Presence

Color = tuple[float, float, float, float]

SHIRTS: tuple[Color, ...] = ((0.20, 0.45, 0.75, 1), (0.70, 0.25, 0.35, 1), (0.25, 0.60, 0.40, 1),
                             (0.85, 0.70, 0.25, 1), (0.50, 0.35, 0.70, 1), (0.90, 0.90, 0.88, 1))


def looks(avatar_id: str) -> tuple[Color, int, int]:
    """(shirt, skin, hair) for an id: the same on every client, different for neighbours."""
    n = zlib.crc32(avatar_id.encode())
    return SHIRTS[n % len(SHIRTS)], (n >> 8) % 3, (n >> 16) % 3


class Crowd:
    """The avatars of the other customers, under ``root``."""

    def __init__(self, parent: NodePath) -> None:
        self.root = parent.attachNewNode("crowd")
        self.avatars: dict[str, NodePath] = {}

    def sync(self, presence: Presence, now: float) -> None:
        spots = presence.spots(now)
        for gone in [a for a in self.avatars if a not in spots]:
            self.avatars.pop(gone).removeNode()
        for avatar_id, spot in spots.items():
            node = self.avatars.get(avatar_id)
            if node is None:
                shirt, skin, hair = looks(avatar_id)
                node = build_avatar(f"avatar:{avatar_id}", shirt, skin=skin, hair=hair,
                                    tag=presence.tag(avatar_id) or "Guest")
                node.reparentTo(self.root)
                self.avatars[avatar_id] = node
            node.setPos(spot.x, spot.y, 0)
            node.find("body").setH(spot.heading)
