"""Limits against abuse: how often a thing may happen per key, and how many at once.

``Window`` counts events per key over a sliding window of seconds (``limit`` events in
``window_s``): ``blocked`` says whether the next one must wait and for how long, ``record``
counts one, ``take`` does both. ``Limits`` holds the branch's named limits, each a setting
(``vbank.config.Settings``, listed in the README):

* ``login_failures_per_user`` and ``login_failures_per_address`` wrong passwords in
  ``login_failure_window_s``: further logins for that user, or from that address, are
  ``429`` with ``Retry-After`` until the window lets one go (a right password does not count);
* ``logins_per_address_per_minute`` login requests of any outcome from one address;
* ``redemptions_per_minute`` redemptions per customer (replays with the same key included:
  they cost the server a request too);
* ``ws_per_address`` WebSocket connections open at once from one address.

The counts live in the server process: with several nodes each node counts its own (a
client spread over N nodes gets N times the allowance).
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

from vbank.config import Settings

#: forget keys that have been quiet this long after every this many events
PRUNE_EVERY = 1024


@dataclass
class Window:
    """At most ``limit`` events per key in any ``window_s`` seconds."""

    limit: int
    window_s: float
    _events: dict[str, deque[float]] = field(default_factory=dict)
    _since_prune: int = 0

    def blocked(self, key: str, now: float | None = None) -> float | None:
        """Seconds until ``key`` may have another event, or None if it may now."""
        now = time.monotonic() if now is None else now
        events = self._events.get(key)
        if events is None:
            return None
        while events and events[0] <= now - self.window_s:
            events.popleft()
        if len(events) < self.limit:
            return None
        return max(0.001, events[0] + self.window_s - now)

    def record(self, key: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        events = self._events.setdefault(key, deque(maxlen=self.limit))
        events.append(now)
        self._since_prune += 1
        if self._since_prune >= PRUNE_EVERY:
            self._prune(now)

    def take(self, key: str, now: float | None = None) -> float | None:
        """Count an event unless ``key`` is over its limit; returns the wait if it is."""
        wait = self.blocked(key, now)
        if wait is None:
            self.record(key, now)
        return wait

    def _prune(self, now: float) -> None:
        self._since_prune = 0
        for key in [k for k, e in self._events.items() if not e or e[-1] <= now - self.window_s]:
            del self._events[key]

    def __len__(self) -> int:
        """Keys being tracked (for tests of the pruning)."""
        return len(self._events)


class Limits:
    """The branch's limits, made from its settings."""

    def __init__(self, settings: Settings) -> None:
        window = settings.login_failure_window_s
        self.login_failures_user = Window(settings.login_failures_per_user, window)
        self.login_failures_address = Window(settings.login_failures_per_address, window)
        self.logins_address = Window(settings.logins_per_address_per_minute, 60.0)
        self.redemptions = Window(settings.redemptions_per_minute, 60.0)
        self.ws_per_address = settings.ws_per_address
        self._open: dict[str, int] = {}

    def login_wait(self, username: str, address: str) -> float | None:
        """How long a login must wait (None: it may go ahead); counts it if it may."""
        waits = [w for w in (self.login_failures_user.blocked(username.lower()),
                             self.login_failures_address.blocked(address)) if w is not None]
        if waits:
            return max(waits)
        return self.logins_address.take(address)

    def login_failed(self, username: str, address: str) -> None:
        self.login_failures_user.record(username.lower())
        self.login_failures_address.record(address)

    def open_socket(self, address: str) -> bool:
        """Count a WebSocket from ``address``; False if it already has as many as allowed."""
        if self._open.get(address, 0) >= self.ws_per_address:
            return False
        self._open[address] = self._open.get(address, 0) + 1
        return True

    def close_socket(self, address: str) -> None:
        left = self._open.get(address, 0) - 1
        if left > 0:
            self._open[address] = left
        else:
            self._open.pop(address, None)

    def sockets(self, address: str) -> int:
        return self._open.get(address, 0)
