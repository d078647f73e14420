"""Other customers in the hall, moving smoothly between the server's updates.

Pure: no Panda3D, no clock of its own (every call takes ``now``, in seconds). The server
sends positions every ``period_s`` (0.2 s); drawn as they come, avatars would jump five
times a second. Instead each avatar glides from where it is drawn when an update arrives to
the update's position over one period, and then stands there until the next. When updates
come on time that is exactly the path between the last two server positions; when one is
late or early, nothing jumps. Headings turn the short way round (350° → 10° passes 0°).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Spot:
    """A place on the floor and a heading: metres, metres, degrees (0 faces +y)."""

    x: float
    y: float
    heading: float


def turn(start: float, end: float, fraction: float) -> float:
    """The heading ``fraction`` of the way from ``start`` to ``end`` turning the short way,
    in [0, 360)."""
    delta = (end - start + 180.0) % 360.0 - 180.0
    return (start + delta * fraction) % 360.0


def between(start: Spot, end: Spot, fraction: float) -> Spot:
    f = min(max(fraction, 0.0), 1.0)
    return Spot(start.x + (end.x - start.x) * f, start.y + (end.y - start.y) * f,
                turn(start.heading, end.heading, f))


@dataclass(slots=True)
class Track:
    """One avatar: its name tag and the glide it is on."""

    tag: str
    start: Spot
    end: Spot
    since: float  # when the glide from start to end began

    def at(self, now: float, period_s: float) -> Spot:
        if period_s <= 0 or now >= self.since + period_s:
            return self.end
        return between(self.start, self.end, (now - self.since) / period_s)


def parse_avatar(raw: Any) -> tuple[str, str, Spot]:
    """(id, tag, spot) from a server avatar ``{id, tag, x, y, heading}``; ValueError if it is
    not one."""
    if not isinstance(raw, Mapping):
        raise ValueError(f"an avatar must be an object, not {raw!r}")
    avatar_id, tag = raw.get("id"), raw.get("tag")
    if not isinstance(avatar_id, str) or not avatar_id:
        raise ValueError(f"an avatar needs a string id: {dict(raw)!r}")
    numbers = []
    for key in ("x", "y", "heading"):
        value = raw.get(key, 0.0 if key == "heading" else None)
        if isinstance(value, bool) or not isinstance(value, int | float) \
                or not math.isfinite(value):
            raise ValueError(f"avatar {avatar_id} needs a finite number {key!r}")
        numbers.append(float(value))
    return avatar_id, str(tag) if tag else "", Spot(*numbers)


class Presence:
    """Who else is in the hall and where each is drawn at a given moment."""

    def __init__(self, period_s: float = 0.2, you: str | None = None) -> None:
        self.period_s = period_s
        self.you = you  # our own avatar's id: the server leaves it out; so do we, to be sure
        self.tracks: dict[str, Track] = {}

    def welcome(self, avatars: Iterable[Any], now: float, *, period_s: float | None = None,
                you: str | None = None) -> None:
        """The ``lobby`` message: start over with everyone in it standing where they are."""
        if period_s is not None and period_s > 0:
            self.period_s = period_s
        self.you = you
        self.tracks.clear()
        self.update(avatars, now)

    def update(self, avatars: Iterable[Any], now: float) -> None:
        """A ``presence`` message: newcomers appear where they stand, the others glide."""
        for raw in avatars:
            try:
                avatar_id, tag, spot = parse_avatar(raw)
            except ValueError as exc:
                log.warning("ignoring an avatar: %s", exc)
                continue
            if avatar_id == self.you:
                continue
            track = self.tracks.get(avatar_id)
            if track is None:
                self.tracks[avatar_id] = Track(tag, spot, spot, now)
            else:
                track.start = track.at(now, self.period_s)
                track.end, track.since = spot, now
                track.tag = tag or track.tag

    def left(self, avatar_id: str) -> bool:
        """An ``avatar_left`` message; whether that avatar was here."""
        return self.tracks.pop(avatar_id, None) is not None

    def spots(self, now: float) -> dict[str, Spot]:
        """Where each avatar is drawn at ``now``."""
        return {avatar_id: t.at(now, self.period_s) for avatar_id, t in self.tracks.items()}

    def tag(self, avatar_id: str) -> str:
        return self.tracks[avatar_id].tag
