"""The hall file ``scenes/lobby.yaml``: where each target stands, and the rules of reach.

Plain Python, no Panda3D: ``load_layout`` validates the file and names the file and the
entry in every error; ``nearest_target`` is what the interact key asks; ``Target.approach``
is the spot a customer walks to (the scenario step ``walk_to``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from client.lobby import LayoutError, LobbyError
from vbank.domain.flows import Text
from vbank.domain.services import SERVICES

LOBBY_PATH = Path(__file__).resolve().parents[2] / "scenes" / "lobby.yaml"
#: how far (metres, from the edge of its footprint) the interact key reaches
REACH = 1.6
KINDS = ("entrance", "counter", "kiosk", "mall_shelf", "queue_board", "risk_booth", "seating")
#: kinds the interact key does nothing at unless the file says otherwise
PASSIVE = ("entrance", "queue_board", "seating")
#: the ids scenario files rely on (PRODUCT.md section 7)
FIXED_IDS = ("entrance", *(f"counter:{s}" for s in SERVICES), "kiosk", "mall_shelf",
             "queue_board", "risk_booth")
TARGET_ID = re.compile(r"^([a-z_]+)(?::([a-z0-9_]+))?$")
TARGET_KEYS = {"id", "position", "heading", "size", "label", "interact"}


@dataclass(frozen=True, slots=True)
class Target:
    """Something in the hall a customer can walk to: a counter, the kiosk, the mall shelf..."""

    id: str
    kind: str
    x: float
    y: float
    z: float  # 0 for things standing on the floor; the height of a wall-mounted one's bottom
    heading: float  # degrees; 0 faces +y, 180 faces the entrance
    width: float
    depth: float
    height: float
    label: Text
    interact: bool

    @property
    def service(self) -> str | None:
        """The service id of a counter, else None."""
        return self.id.partition(":")[2] if self.kind == "counter" else None

    @property
    def solid(self) -> bool:
        """Whether it stands on the floor in the way of walking."""
        return self.kind != "entrance" and self.z < 0.5

    def facing(self) -> tuple[float, float]:
        """The unit vector its front faces."""
        h = math.radians(self.heading)
        return -math.sin(h), math.cos(h)

    def approach(self, gap: float = 0.9) -> tuple[float, float]:
        """Where a customer stands to use it: ``gap`` metres in front of its front face."""
        fx, fy = self.facing()
        out = self.depth / 2 + gap
        return self.x + fx * out, self.y + fy * out

    def distance_to(self, px: float, py: float) -> float:
        """Distance on the floor from a point to the edge of its footprint (0 inside)."""
        h = math.radians(self.heading)
        dx, dy = px - self.x, py - self.y
        lx = dx * math.cos(h) + dy * math.sin(h)
        ly = -dx * math.sin(h) + dy * math.cos(h)
        return math.hypot(max(abs(lx) - self.width / 2, 0.0), max(abs(ly) - self.depth / 2, 0.0))


@dataclass(frozen=True, slots=True)
class Hall:
    width: float
    depth: float
    height: float
    name: Text
    welcome: Text


@dataclass(frozen=True, slots=True)
class Layout:
    hall: Hall
    targets: dict[str, Target]

    def target(self, target_id: str) -> Target:
        try:
            return self.targets[target_id]
        except KeyError:
            raise LobbyError(f"no target {target_id!r} in the hall") from None

    def of_kind(self, kind: str) -> list[Target]:
        return [t for t in self.targets.values() if t.kind == kind]

    def teller_line(self) -> float:
        """The y customers stay in front of: the front face of the counters."""
        counters = self.of_kind("counter")
        if not counters:
            return self.hall.depth / 2
        return min(c.y - c.depth / 2 for c in counters)


def nearest_target(layout: Layout, x: float, y: float, reach: float = REACH) -> Target | None:
    """The interactable target closest to (x, y) within ``reach``; ties go to the lower id."""
    best: tuple[float, str] | None = None
    for target in layout.targets.values():
        if not target.interact:
            continue
        d = target.distance_to(x, y)
        if d <= reach and (best is None or (d, target.id) < best):
            best = (d, target.id)
    return None if best is None else layout.targets[best[1]]


# ---------------------------------------------------------------------- the hall file
@cache
def load_layout(path: Path = LOBBY_PATH) -> Layout:
    """The hall described by ``path``, validated."""
    try:
        with path.open(encoding="utf-8") as f:
            doc = yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as exc:
        raise LayoutError(f"{path}: cannot be read: {exc}") from exc
    return parse_layout(doc, str(path))


def _text(node: Any, where: str) -> Text:
    if (not isinstance(node, Mapping) or not isinstance(node.get("en"), str)
            or not isinstance(node.get("zh"), str) or not node["en"] or not node["zh"]):
        raise LayoutError(f"{where} must be {{en: ..., zh: ...}} with both texts")
    return Text(node["en"], node["zh"])


def _numbers(node: Any, counts: tuple[int, ...], where: str, positive: bool = False
             ) -> list[float]:
    ok = (isinstance(node, list) and len(node) in counts
          and all(isinstance(v, int | float) and not isinstance(v, bool) for v in node))
    if not ok or (positive and min(node) <= 0):
        kind = "positive numbers" if positive else "numbers"
        raise LayoutError(f"{where} must be a list of {' or '.join(map(str, counts))} {kind}")
    return [float(v) for v in node]


def _number(node: Mapping[str, Any], key: str, where: str) -> float:
    value = node.get(key)
    if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
        raise LayoutError(f"{where}: {key} must be a positive number")
    return float(value)


def parse_target(node: Any, hall: Hall, where: str) -> Target:
    if not isinstance(node, Mapping):
        raise LayoutError(f"{where} must be a mapping")
    unknown = sorted(set(node) - TARGET_KEYS)
    if unknown:
        raise LayoutError(f"{where}: unknown key {unknown[0]}")
    target_id = node.get("id")
    match = TARGET_ID.match(target_id) if isinstance(target_id, str) else None
    if not isinstance(target_id, str) or match is None:
        raise LayoutError(f"{where}: id must look like kind or kind:name ({TARGET_ID.pattern})")
    where = f"{where} ({target_id})"
    kind, name = match.groups()
    if kind not in KINDS:
        raise LayoutError(f"{where}: unknown kind {kind}; one of {', '.join(KINDS)}")
    if kind == "counter" and name not in SERVICES:
        raise LayoutError(f"{where}: no service {name}; one of {', '.join(SERVICES)}")
    x, y, *rest = _numbers(node.get("position"), (2, 3), f"{where}: position")
    width, depth, height = _numbers(node.get("size"), (3,), f"{where}: size", positive=True)
    if abs(x) > hall.width / 2 or abs(y) > hall.depth / 2:
        raise LayoutError(f"{where}: position ({x:g}, {y:g}) is outside the hall "
                          f"({hall.width:g} x {hall.depth:g} m centred on 0, 0)")
    heading = node.get("heading", 0)
    if not isinstance(heading, int | float) or isinstance(heading, bool):
        raise LayoutError(f"{where}: heading must be a number of degrees")
    interact = node.get("interact", kind not in PASSIVE)
    if not isinstance(interact, bool):
        raise LayoutError(f"{where}: interact must be true or false")
    return Target(target_id, kind, x, y, rest[0] if rest else 0.0, float(heading),
                  width, depth, height, _text(node.get("label"), f"{where}: label"), interact)


def parse_layout(node: Any, source: str) -> Layout:
    """The hall from a parsed document; ``source`` names it in errors."""
    if not isinstance(node, Mapping):
        raise LayoutError(f"{source}: must be a mapping")
    unknown = sorted(set(node) - {"hall", "targets"})
    if unknown:
        raise LayoutError(f"{source}: unknown key {unknown[0]}")
    raw_hall = node.get("hall")
    if not isinstance(raw_hall, Mapping):
        raise LayoutError(f"{source}: hall must be a mapping")
    where = f"{source}: hall"
    hall = Hall(_number(raw_hall, "width", where), _number(raw_hall, "depth", where),
                _number(raw_hall, "height", where), _text(raw_hall.get("name"), f"{where}: name"),
                _text(raw_hall.get("welcome"), f"{where}: welcome"))
    raw_targets = node.get("targets")
    if not isinstance(raw_targets, list):
        raise LayoutError(f"{source}: targets must be a list")
    targets: dict[str, Target] = {}
    for i, raw in enumerate(raw_targets):
        target = parse_target(raw, hall, f"{source}: targets[{i}]")
        if target.id in targets:
            raise LayoutError(f"{source}: targets[{i}]: id {target.id} is used twice")
        targets[target.id] = target
    missing = [t for t in FIXED_IDS if t not in targets]
    if missing:
        raise LayoutError(f"{source}: targets: missing {', '.join(missing)}")
    if not any(t.kind == "seating" for t in targets.values()):
        raise LayoutError(f"{source}: targets: no seating")
    return Layout(hall, targets)
