"""Messages between the nodes of a branch, through Redis.

Each node listens on its own channel (``<prefix>node:<name>``) and on one all nodes share
(``<prefix>all``). Who is signed in where is the hash ``where`` (user → node), which node
hosts a session is ``home`` (session → node). A message for a person signed in on another
node goes to that node, which sends it on their socket; a teller's command about a call
hosted elsewhere goes to the hosting node, which carries it out and answers the same way.

Redis may restart and lose everything. Every node watches a random ``epoch`` key: when it
disappears or changes, each node puts its own part back (``on_reset``): its people in
``where``, its sessions in ``home``, its tellers, and its waiting customers, read from the
database, in their old order. Messages sent while Redis is away are lost (they are updates
that the next one replaces, or a person's request that gets an error to retry); nothing in
the database depends on them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from vbank import VbankError

log = logging.getLogger(__name__)

Handler = Callable[[str, dict[str, Any]], Awaitable[None]]
#: how often each node checks the epoch and says it is alive
WATCH_S = 1.0
#: kinds handled in the order they arrive, one at a time per person (a teller's offer
#: must be answered before their next command is carried out)
SERIAL = frozenset({"forward"})

_DEPART = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  return redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0
"""


class ClusterError(VbankError):
    """Redis cannot be used at start-up."""


class Cluster:
    """This node's link to the others."""

    def __init__(self, url: str, node: str, prefix: str = "vbank:") -> None:
        self.url = url
        self.node = node
        self.prefix = prefix
        self.redis: Redis = Redis.from_url(url, decode_responses=True, socket_timeout=5,
                                           socket_connect_timeout=2, health_check_interval=10)
        self._depart = self.redis.register_script(_DEPART)
        self.epoch: str | None = None
        self._handler: Handler | None = None
        self._on_reset: Callable[[], Awaitable[None]] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._serial: dict[str, asyncio.Future[None]] = {}
        self.resets = 0  # how many times Redis was found emptied (for tests and metrics)

    def key(self, name: str) -> str:
        return self.prefix + name

    async def start(self, handler: Handler, on_reset: Callable[[], Awaitable[None]]) -> None:
        self._handler, self._on_reset = handler, on_reset
        try:
            await self.redis.ping()
            self.epoch = await self._current_epoch()
        except RedisError as exc:
            raise ClusterError(f"Redis at {self.url} cannot be reached: {exc}") from exc
        subscribed = asyncio.Event()
        self._tasks = [asyncio.create_task(self._listen(subscribed)),
                       asyncio.create_task(self._watch())]
        await asyncio.wait_for(subscribed.wait(), 10)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(RedisError):
            await self.redis.delete(self.key(f"alive:{self.node}"))
        await self.redis.aclose()

    # ------------------------------------------------------------------ directory
    async def arrived(self, username: str) -> None:
        await self._quietly(self.redis.hset(self.key("where"), username, self.node))

    async def departed(self, username: str) -> None:
        await self._quietly(self._depart(keys=[self.key("where")],
                                         args=[username, self.node]))

    async def host(self, session_id: str) -> None:
        await self._quietly(self.redis.hset(self.key("home"), session_id, self.node))

    async def unhost(self, session_id: str) -> None:
        await self._quietly(self.redis.hdel(self.key("home"), session_id))

    async def home_of(self, session_id: str) -> str | None:
        try:
            node = await self.redis.hget(self.key("home"), session_id)
        except RedisError:
            return None
        return str(node) if node else None

    async def nodes(self) -> list[str]:
        """The nodes alive now (each refreshes its key every second)."""
        keys = [k async for k in self.redis.scan_iter(self.key("alive:*"))]
        return sorted(k.rsplit(":", 1)[-1] for k in keys)

    # ------------------------------------------------------------------- messages
    async def deliver(self, username: str, message: dict[str, Any]) -> None:
        """Send ``message`` to a person signed in on another node (nothing if nowhere)."""
        try:
            node = await self.redis.hget(self.key("where"), username)
        except RedisError as exc:
            log.warning("a message for %s is lost: %s", username, exc)
            return
        if node and node != self.node:
            await self.tell(str(node), "deliver", to=username, message=message)

    async def tell(self, node: str, kind: str, **payload: Any) -> None:
        await self._publish(self.key(f"node:{node}"), kind, payload)

    async def tell_home(self, sid: str, kind: str, **payload: Any) -> None:
        """To the node hosting session ``sid``, if another."""
        node = await self.home_of(sid)
        if node and node != self.node:
            await self.tell(node, kind, **payload)

    async def broadcast(self, kind: str, **payload: Any) -> None:
        """To every other node."""
        await self._publish(self.key("all"), kind, payload)

    async def _publish(self, channel: str, kind: str, payload: dict[str, Any]) -> None:
        data = json.dumps({"kind": kind, "from": self.node, "payload": payload})
        try:
            await self.redis.publish(channel, data)
        except RedisError as exc:
            log.warning("%s to %s is lost: %s", kind, channel, exc)

    async def _quietly(self, command: Awaitable[Any]) -> None:
        """A directory write; while Redis is away it is redone by the reset that follows."""
        try:
            await command
        except RedisError as exc:
            log.warning("Redis is not reachable: %s", exc)

    # -------------------------------------------------------------------- listening
    async def _listen(self, subscribed: asyncio.Event) -> None:
        channels = (self.key(f"node:{self.node}"), self.key("all"))
        while True:
            try:
                async with self.redis.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(*channels)
                    subscribed.set()
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            await self._receive(str(message["data"]))
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                log.warning("listening to the other nodes: %s; again in a moment", exc)
                await asyncio.sleep(WATCH_S / 2)

    async def _receive(self, data: str) -> None:
        try:
            envelope = json.loads(data)
            kind, sender = str(envelope["kind"]), str(envelope["from"])
            payload = dict(envelope["payload"])
        except (ValueError, KeyError, TypeError):
            log.warning("a malformed message between nodes was dropped")
            return
        if (sender == self.node and kind != "deliver") or self._handler is None:
            return  # our own broadcast
        if kind in SERIAL:
            user = payload.get("user")
            who = str(user.get("username")) if isinstance(user, dict) else sender
            self._chain(who, self._handle(kind, payload))
        elif kind == "deliver":
            await self._handle(kind, payload)  # in order, and quick
        else:
            self._chain(secrets.token_hex(4), self._handle(kind, payload))

    def _chain(self, key: str, coro: Awaitable[None]) -> None:
        before = self._serial.get(key)

        async def run() -> None:
            if before is not None:
                await asyncio.gather(before, return_exceptions=True)
            await coro

        task = asyncio.ensure_future(run())
        self._serial[key] = task
        task.add_done_callback(lambda t: self._serial.pop(key, None)
                               if self._serial.get(key) is t else None)

    async def _handle(self, kind: str, payload: dict[str, Any]) -> None:
        assert self._handler is not None
        try:
            await self._handler(kind, payload)
        except Exception:
            log.exception("handling %s from another node", kind)

    # ---------------------------------------------------------------------- epoch
    async def _current_epoch(self) -> str:
        """The epoch, made if Redis has none (first start, or restarted empty)."""
        await self.redis.set(self.key("epoch"), secrets.token_hex(8), nx=True)
        return str(await self.redis.get(self.key("epoch")))

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(WATCH_S)
            try:
                await self.redis.set(self.key(f"alive:{self.node}"), "1", ex=5)
                epoch = await self._current_epoch()
                if epoch == self.epoch:
                    continue
                log.warning("Redis lost the branch's state (restarted?): putting this "
                            "node's part back")
                assert self._on_reset is not None
                await self._on_reset()
                self.epoch = epoch  # only once all was put back: a failure retries
                self.resets += 1
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                log.warning("Redis is not reachable: %s", exc)
            except Exception:
                log.exception("putting this node's state back into Redis failed")
