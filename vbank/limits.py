"""Limits against abuse: how often a thing may happen per key, and how many at once.

``Window`` counts events per key over a sliding window of seconds (``limit`` events in
``window_s``): ``blocked`` says whether the next one must wait and for how long, ``record``
counts one, ``take`` does both, ``forgive`` takes one back. ``Limits`` holds the branch's
named limits, each a setting (``vbank.config.Settings``, listed in the README):

* ``login_failures_per_user`` and ``login_failures_per_address`` wrong passwords in
  ``login_failure_window_s``: further logins for that user, or from that address, are
  ``429`` with ``Retry-After`` until the window lets one go (a right password does not count).
  A login counts as a wrong password from before its password is checked (checked and
  counted in one step) until it proves right: counted only after argon2's tens of
  milliseconds, attempts sent together would all be checked against the count before them;
* ``logins_per_address_per_minute`` login requests of any outcome from one address;
* ``redemptions_per_minute`` redemptions per customer (replays with the same key included:
  they cost the server a request too);
* ``ws_per_address`` WebSocket connections open at once from one address;
* per signaling socket, its messages by kind (``MESSAGE_KINDS``: ``ws_joins_per_10s``,
  ``ws_offers_per_10s``, ``ws_commands_per_s``, ``ws_moves_per_s``), each a ``TokenBucket``
  kept by the socket's ``SocketAllowance``: a burst of that many, then as many per period as
  it refills; one past it is refused with ``rate_limited`` and how long to wait, and the
  socket stays open. Kept with the socket (a new socket starts full), never in Redis.

On one node the counts live in the server process. With several nodes (``share``) they live
in Redis, so that a client spread over the nodes gets one allowance, not one per node: each
window is a sorted set of event times on Redis's clock, checked and counted by one script
(each event a member of its own, so that a forgiven one can be taken out);
sockets are counted per node (``sockets:<node>``) and summed over the live nodes, so a node
that dies takes its count with it. While Redis cannot be reached, each node falls back to
its own counts (limited still, per node) rather than refusing everyone or no one.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections import deque
from collections.abc import Iterable
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

    def forgive(self, key: str, at: float) -> None:
        """Take back the event counted at ``at`` (nothing if the window has let it go)."""
        events = self._events.get(key)
        if events is not None and at in events:
            events.remove(at)  # events at the same instant are alike: any one of them will do

    def _prune(self, now: float) -> None:
        self._since_prune = 0
        for key in [k for k, e in self._events.items() if not e or e[-1] <= now - self.window_s]:
            del self._events[key]

    def __len__(self) -> int:
        """Keys being tracked (for tests of the pruning)."""
        return len(self._events)


# KEYS[1]: the window's sorted set. ARGV: limit, window (ms), a unique member (the event, to
# take back with ZREM). Returns -1 if the event may happen, counting it, else the milliseconds
# until it may.
_TAKE = """
local limit, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= limit then
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return math.max(1, tonumber(first[2]) + window - now)
end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('PEXPIRE', KEYS[1], window)
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


@dataclass
class TokenBucket:
    """``capacity`` events at once, then ``rate`` a second: a burst is let through, a
    sustained flood is not."""

    capacity: float
    rate: float  # tokens added a second
    tokens: float = field(init=False)  # full to start with
    stamp: float | None = field(default=None, init=False)  # when ``tokens`` was counted

    def __post_init__(self) -> None:
        self.tokens = self.capacity

    def take(self, now: float) -> float | None:
        """Spend a token: None if there was one, else the seconds until there is."""
        if self.stamp is not None:
            gained = max(0.0, now - self.stamp) * self.rate
            self.tokens = min(self.capacity, self.tokens + gained)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return None
        return (1.0 - self.tokens) / self.rate


#: the allowance each signaling message draws on (``vbank.api.ws.ALLOWED`` lists the same)
MESSAGE_KINDS: dict[str, str] = {
    **dict.fromkeys(("join", "leave", "ask_for", "lobby_enter", "lobby_leave"), "joins"),
    "offer": "offers",
    **dict.fromkeys(("status", "accept", "end", "start_flow", "push", "verify_identity",
                     "advance", "back", "show_id", "sign", "answer", "acknowledge"),
                    "commands"),
    **dict.fromkeys(("move", "ping"), "moves"),
}


class SocketAllowance:
    """What one signaling socket may still send, a bucket per kind of message."""

    def __init__(self, settings: Settings) -> None:
        def per(count: int, period_s: float) -> TokenBucket:
            return TokenBucket(float(count), count / period_s)

        self.buckets = {"joins": per(settings.ws_joins_per_10s, 10.0),
                        "offers": per(settings.ws_offers_per_10s, 10.0),
                        "commands": per(settings.ws_commands_per_s, 1.0),
                        "moves": per(settings.ws_moves_per_s, 1.0)}

    def take(self, kind: str, now: float | None = None) -> float | None:
        """Count a message of type ``kind``: None if it may be handled, else the seconds
        until one of its kind may. A type not in ``MESSAGE_KINDS`` is not counted."""
        group = MESSAGE_KINDS.get(kind)
        if group is None:
            return None
        return self.buckets[group].take(time.monotonic() if now is None else now)


@dataclass(frozen=True, slots=True)
class Counted:
    """What ``SharedWindow.reserve`` did: refused an event (``wait``: seconds until one may
    come) or counted it, remembering which one it was so that it can be forgiven."""

    key: str
    wait: float | None = None
    at: float = 0.0  # when, on this node's clock: the event in the window kept here
    member: str | None = None  # the event in Redis's sorted set; None: counted here


class SharedWindow:
    """A ``Window`` kept in Redis for every node; its own ``Window`` while Redis is away."""

    def __init__(self, name: str, local: Window, shared: Shared | None) -> None:
        self.name = name
        self.local = local
        self.shared = shared

    def _key(self, shared: Shared, key: str) -> str:
        return f"{shared.prefix}rl:{self.name}:{key}"

    async def take(self, key: str) -> float | None:
        """Count an event unless ``key`` is over its limit; returns the wait if it is."""
        return (await self.reserve(key)).wait

    async def reserve(self, key: str) -> Counted:
        """``take``, remembering the event it counted for ``forgive``."""
        if self.shared is not None:
            member = secrets.token_hex(6)
            try:
                wait_ms = int(await self.shared.take(
                    keys=[self._key(self.shared, key)],
                    args=[self.local.limit, round(self.local.window_s * 1000), member]))
            except RedisError as exc:
                log.warning("limit %s counted on this node only (Redis: %s)", self.name, exc)
            else:
                if wait_ms >= 0:
                    return Counted(key, wait=wait_ms / 1000)
                return Counted(key, member=member)
        now = time.monotonic()
        return Counted(key, wait=self.local.take(key, now), at=now)

    async def forgive(self, event: Counted) -> None:
        """Take back an event ``reserve`` counted: it turned out not to be one."""
        if event.wait is not None:
            return  # refused: nothing was counted
        if event.member is None:
            self.local.forgive(event.key, event.at)
        elif self.shared is not None:
            try:
                await self.shared.redis.zrem(self._key(self.shared, event.key), event.member)
            except RedisError as exc:  # it stays counted: the limit errs on the safe side
                log.warning("limit %s: an event not forgiven (Redis: %s)", self.name, exc)


class Shared:
    """Redis, where every node keeps its counts."""

    def __init__(self, redis: Redis, node: str, prefix: str) -> None:
        self.redis = redis
        self.node = node
        self.prefix = prefix
        self.take = redis.register_script(_TAKE)
        self.count_socket = redis.register_script(_OPEN_SOCKET)


@dataclass(frozen=True, slots=True)
class LoginAttempt:
    """A login, counted as a wrong password until its password proves right."""

    wait: float | None  # None: the password may be checked; else seconds to wait first
    counted: tuple[tuple[SharedWindow, Counted], ...]  # the failures counted in advance


async def _forgive(counted: Iterable[tuple[SharedWindow, Counted]]) -> None:
    for window, event in counted:
        await window.forgive(event)


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

    async def login_attempt(self, username: str, address: str) -> LoginAttempt:
        """Count a login, and count it as a wrong password for its user name and its address
        until ``login_succeeded``, unless one of them has no allowance left: then nothing is
        counted and the attempt says how long to wait.

        Each window checks and counts in one step, so that of attempts arriving together
        only as many as the limit allows are let through to the password check.
        """
        held: list[tuple[SharedWindow, Counted]] = []
        for window, key in ((self.login_failures_user, username.lower()),
                            (self.login_failures_address, address)):
            event = await window.reserve(key)
            if event.wait is not None:
                await _forgive(held)
                return LoginAttempt(event.wait, ())
            held.append((window, event))
        wait = await self.logins_address.take(address)
        if wait is not None:
            await _forgive(held)
            return LoginAttempt(wait, ())
        return LoginAttempt(None, tuple(held))

    async def login_succeeded(self, attempt: LoginAttempt) -> None:
        """The password was right (or never checked): it was not a wrong one after all."""
        await _forgive(attempt.counted)

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
