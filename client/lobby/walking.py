"""How a customer walks in the hall: turning, moving, and not walking through furniture.

Pure: ``step`` takes a pose, what the keys ask and the frame time, and returns the next pose.
Walls and the teller line bound the floor; solid targets block, and a blocked move slides
along whichever axis is free, as people expect from a game.
"""

from __future__ import annotations

import heapq
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


#: the grid a route is planned on, metres
GRID = 0.25


def heading_to(x: float, y: float, tx: float, ty: float) -> float:
    """The heading (degrees, 0 facing +y) from (x, y) towards (tx, ty)."""
    return math.degrees(math.atan2(-(tx - x), ty - y)) % 360.0


def plan(layout: Layout, start: tuple[float, float], goal: tuple[float, float]
         ) -> list[tuple[float, float]]:
    """Waypoints from ``start`` to ``goal`` around the furniture (A* on a 25 cm grid, eight
    neighbours, straight runs merged); the last is ``goal``. Raises ValueError when the
    goal cannot be stood on or reached."""
    if blocked(layout, *goal):
        raise ValueError(f"({goal[0]:.2f}, {goal[1]:.2f}) is inside a wall or furniture")
    x0, y0 = -layout.hall.width / 2, -layout.hall.depth / 2

    def cell(p: tuple[float, float]) -> tuple[int, int]:
        return round((p[0] - x0) / GRID), round((p[1] - y0) / GRID)

    def point(c: tuple[int, int]) -> tuple[float, float]:
        return x0 + c[0] * GRID, y0 + c[1] * GRID

    begin, end = cell(start), cell(goal)
    free: dict[tuple[int, int], bool] = {}

    def open_(c: tuple[int, int]) -> bool:
        if c not in free:
            free[c] = c in (begin, end) or not blocked(layout, *point(c))
        return free[c]

    frontier: list[tuple[float, float, tuple[int, int]]] = [(0.0, 0.0, begin)]
    came: dict[tuple[int, int], tuple[int, int]] = {begin: begin}
    cost = {begin: 0.0}
    while frontier:
        _, spent, here = heapq.heappop(frontier)
        if here == end:
            break
        if spent > cost.get(here, math.inf):
            continue
        for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (1, -1), (-1, 1), (-1, -1)):
            nxt = (here[0] + dx, here[1] + dy)
            if not open_(nxt) or (dx and dy and not (open_((here[0] + dx, here[1])) and
                                                     open_((here[0], here[1] + dy)))):
                continue  # no cutting a corner of furniture
            new = spent + math.hypot(dx, dy)
            if new < cost.get(nxt, math.inf):
                cost[nxt], came[nxt] = new, here
                heapq.heappush(frontier, (new + math.dist(nxt, end), new, nxt))
    if end not in came:
        raise ValueError(f"no way from ({start[0]:.1f}, {start[1]:.1f}) to "
                         f"({goal[0]:.1f}, {goal[1]:.1f})")
    cells = [end]
    while cells[-1] != begin:
        cells.append(came[cells[-1]])
    cells.reverse()
    points = [start, *(point(c) for c in cells[1:-1]), goal]
    # pull the string: from each waypoint, on to the farthest one in a straight free line
    route: list[tuple[float, float]] = []
    at = 0
    while at < len(points) - 1:
        far = len(points) - 1
        while far > at + 1 and not clear(layout, points[at], points[far]):
            far -= 1
        route.append(points[far])
        at = far
    return route


def clear(layout: Layout, a: tuple[float, float], b: tuple[float, float],
          every: float = 0.1) -> bool:
    """Whether a customer can walk the straight line from ``a`` to ``b``."""
    n = max(1, math.ceil(math.dist(a, b) / every))
    return not any(blocked(layout, a[0] + (b[0] - a[0]) * i / n, a[1] + (b[1] - a[1]) * i / n)
                   for i in range(1, n))
