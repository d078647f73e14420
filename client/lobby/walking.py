"""How a customer walks in the hall: turning, moving, and not walking through furniture.

Pure: ``step`` takes a pose, what the keys ask and the frame time, and returns the next pose.
Walls and the teller line bound the floor; solid targets block, and a blocked move slides
along whichever axis is free, as people expect from a game.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from client.lobby.layout import Layout

#: metres a second, walking forwards (backwards is half that)
WALK_SPEED = 4.0
#: degrees a second
TURN_SPEED = 120.0
#: a customer's footprint, as a circle
RADIUS = 0.35


@dataclass(frozen=True, slots=True)
class Pose:
    x: float
    y: float
    heading: float  # degrees; 0 faces +y


def spawn_pose(layout: Layout) -> Pose:
    """Where a customer appears: just inside the entrance, facing into the hall."""
    entrance = layout.target("entrance")
    return Pose(entrance.x, entrance.y + 1.6, 0.0)


def blocked(layout: Layout, x: float, y: float, radius: float = RADIUS) -> bool:
    """Whether a customer standing at (x, y) would be in a wall or a piece of furniture."""
    half_w = layout.hall.width / 2 - radius
    if not (-half_w <= x <= half_w):
        return True
    if not (-layout.hall.depth / 2 + radius <= y <= layout.teller_line() - radius):
        return True
    return any(t.solid and t.distance_to(x, y) < radius for t in layout.targets.values())


def step(layout: Layout, pose: Pose, forward: float, turn: float, dt: float) -> Pose:
    """The pose after ``dt`` seconds of walking: ``forward`` and ``turn`` are in [-1, 1]
    (1: forwards / to the left)."""
    heading = (pose.heading + turn * TURN_SPEED * dt) % 360.0
    speed = WALK_SPEED * (forward if forward >= 0 else forward / 2)
    h = math.radians(heading)
    dx, dy = -math.sin(h) * speed * dt, math.cos(h) * speed * dt
    for nx, ny in ((pose.x + dx, pose.y + dy), (pose.x + dx, pose.y), (pose.x, pose.y + dy)):
        if (nx, ny) != (pose.x, pose.y) and not blocked(layout, nx, ny):
            return Pose(nx, ny, heading)
    return Pose(pose.x, pose.y, heading)
