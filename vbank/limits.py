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

On one node the counts live in the server process. With several nodes (``share``) they live
in Redis, so that a client spread over the nodes gets one allowance, not one per node: each
window is a sorted set of event times on Redis's clock, checked and counted by one script;
sockets are counted per node (``sockets:<node>``) and summed over the live nodes, so a node
that dies takes its count with it. While Redis cannot be reached, each node falls back to
its own counts (limited still, per node) rather than refusing everyone or no one.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections import deque
from dataclasses import dataclass, field

from redis.asyncio import Redis
from redis.exceptions import RedisError

from vbank.config import Settings

log = logging.getLogger(__name__)

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


# KEYS[1]: the window's sorted set. ARGV: limit, window (ms), mode (take | blocked |
# record), a unique member. Returns -1 if the event may happen (and, unless ``blocked``, counts
# it), else the milliseconds until it may.
_WINDOW = """
local limit, window, mode = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if mode ~= 'record' and redis.call('ZCARD', KEYS[1]) >= limit then
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return math.max(1, tonumber(first[2]) + window - now)
end
if mode ~= 'blocked' then
  redis.call('ZADD', KEYS[1], now, ARGV[4])
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -limit - 1)
  redis.call('PEXPIRE', KEYS[1], window)
end
return -1
"""

# KEYS[1]: the set of nodes; ARGV: prefix, this node, address, the cap. Counts the socket on
# this node unless the live nodes together already hold the cap; returns 1 if counted.
_OPEN_SOCKET = """
local p, me, address, cap = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local held = tonumber(redis.call('HGET', p..'sockets:'..me, address) or '0')
for _, node in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if node ~= me and redis.call('EXISTS', p..'alive:'..node) == 1 then
    held = held + tonumber(redis.call('HGET', p..'sockets:'..node, address) or '0')
  end
end
if held >= cap then return 0 end
redis.call('HINCRBY', p..'sockets:'..me, address, 1)
return 1
"""


class SharedWindow:
    """A ``Window`` kept in Redis for every node; its own ``Window`` while Redis is away."""

    def __init__(self, name: str, local: Window, shared: Shared | None) -> None:
        self.name = name
        self.local = local
        self.shared = shared

    async def _run(self, key: str, mode: str) -> float | None:
        local = {"take": self.local.take, "blocked": self.local.blocked,
                 "record": self.local.record}[mode]
        if self.shared is None:
            return local(key)
        try:
            wait_ms = await self.shared.window(
                keys=[f"{self.shared.prefix}rl:{self.name}:{key}"],
                args=[self.local.limit, round(self.local.window_s * 1000), mode,
                      secrets.token_hex(6)])
        except RedisError as exc:
            log.warning("limit %s counted on this node only (Redis: %s)", self.name, exc)
            return local(key)
        return None if int(wait_ms) < 0 else int(wait_ms) / 1000

    async def blocked(self, key: str) -> float | None:
        return await self._run(key, "blocked")

    async def record(self, key: str) -> None:
        await self._run(key, "record")

    async def take(self, key: str) -> float | None:
        return await self._run(key, "take")


class Shared:
    """Redis, where every node keeps its counts."""

    def __init__(self, redis: Redis, node: str, prefix: str) -> None:
        self.redis = redis
        self.node = node
        self.prefix = prefix
        self.window = redis.register_script(_WINDOW)
        self.count_socket = redis.register_script(_OPEN_SOCKET)


class Limits:
    """The branch's limits, made from its settings."""

    def __init__(self, settings: Settings) -> None:
        window = settings.login_failure_window_s
        self.shared: Shared | None = None
        self.login_failures_user = SharedWindow(
            "login_user", Window(settings.login_failures_per_user, window), None)
        self.login_failures_address = SharedWindow(
            "login_address", Window(settings.login_failures_per_address, window), None)
        self.logins_address = SharedWindow(
            "logins", Window(settings.logins_per_address_per_minute, 60.0), None)
        self.redemptions = SharedWindow(
            "redemptions", Window(settings.redemptions_per_minute, 60.0), None)
        self.ws_per_address = settings.ws_per_address
        self._open: dict[str, int] = {}  # this node's sockets, per address

    def share(self, redis: Redis, node: str, prefix: str) -> None:
        """Count in Redis with the other nodes from now on."""
        self.shared = Shared(redis, node, prefix)
        for window in (self.login_failures_user, self.login_failures_address,
                       self.logins_address, self.redemptions):
            window.shared = self.shared

    async def login_wait(self, username: str, address: str) -> float | None:
        """How long a login must wait (None: it may go ahead); counts it if it may."""
        waits = [w for w in (await self.login_failures_user.blocked(username.lower()),
                             await self.login_failures_address.blocked(address))
                 if w is not None]
        if waits:
            return max(waits)
        return await self.logins_address.take(address)

    async def login_failed(self, username: str, address: str) -> None:
        await self.login_failures_user.record(username.lower())
        await self.login_failures_address.record(address)

    async def open_socket(self, address: str) -> bool:
        """Count a WebSocket from ``address``; False if it already has as many as allowed
        (on every node together, with several)."""
        if self._open.get(address, 0) >= self.ws_per_address:
            return False
        if self.shared is not None:
            try:
                counted = await self.shared.count_socket(
                    keys=[f"{self.shared.prefix}nodes"],
                    args=[self.shared.prefix, self.shared.node, address, self.ws_per_address])
            except RedisError as exc:
                log.warning("sockets counted on this node only (Redis: %s)", exc)
            else:
                if not counted:
                    return False
        self._open[address] = self._open.get(address, 0) + 1
        return True

    async def close_socket(self, address: str) -> None:
        left = self._open.get(address, 0) - 1
        if left > 0:
            self._open[address] = left
        else:
            self._open.pop(address, None)
        if self.shared is not None:
            key = f"{self.shared.prefix}sockets:{self.shared.node}"
            try:
                if left > 0:
                    await self.shared.redis.hset(key, address, left)
                else:
                    await self.shared.redis.hdel(key, address)
            except RedisError as exc:
                log.warning("socket count not updated in Redis: %s", exc)

    async def rebuild(self) -> None:
        """Redis lost its data: put back this node's socket counts (the windows start
        afresh, which forgives at most one window's events)."""
        if self.shared is not None and self._open:
            await self.shared.redis.hset(f"{self.shared.prefix}sockets:{self.shared.node}",
                                         mapping={a: str(n) for a, n in self._open.items()})

    def sockets(self, address: str) -> int:
        """This node's sockets from ``address``."""
        return self._open.get(address, 0)
