"""Messages between the nodes of a branch, through Redis.

Each node reads its own inbox, the stream ``<prefix>inbox:<name>``, and listens on a pub/sub
channel all nodes share (``<prefix>all``) for updates anyone may miss (queue changes, the
lobby's avatars). The inbox is a stream, not a channel, so that a message sent while its
node is reconnecting to Redis waits for it instead of being dropped: an ``assigned`` lost
that way would leave a teller busy with a customer nobody pairs them with.

Who is signed in where is the hash ``where`` (user → node), which node hosts a session is
``home`` (session → node), each customer's live session is ``customers`` (customer →
session). A message for a person signed in on another node goes to that node, which sends it
on their socket; a person's command about a session hosted elsewhere goes to the hosting
node, which carries it out and answers the same way.

Redis may restart and lose everything. Every node watches a random ``epoch`` key: when it
disappears or changes, each node puts its own part back (``on_reset``): its people in
``where``, its sessions in ``home``, its tellers, and its waiting customers, read from the
database, in their old order. Messages sent while Redis itself is away are lost (they are
updates that the next one replaces, or a person's request that gets an error to retry);
nothing in the database depends on them.

Every node also says each second that it is alive (``alive:<node>``, lasting
``timeout_s``); a node that stops saying so is taken out of the shared state by the first
live node to notice (``on_dead``, see ``reaper``).
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

#: what a node does with a message from another: an answer for ``ask``, else None
Handler = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any] | None]]
#: how often each node checks the epoch and says it is alive
WATCH_S = 1.0
#: the longest each part of stopping a node waits (its tasks, then its goodbye)
STOP_S = 5.0
#: kinds handled in the order they arrive, one at a time per person (a teller's offer
#: must be answered before their next command is carried out)
SERIAL = frozenset({"forward", "reattach", "customer_gone"})
#: a node's inbox keeps about this many messages at most (one that stopped reading)
INBOX_MAX = 10_000

_DEPART = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  return redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0
"""

# everyone the directory places on node ARGV[1]: out (a person who meanwhile signed in
# elsewhere is not, as each entry is read and removed in one step); returns their names
_FORGET = """
local gone = {}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  if all[i + 1] == ARGV[1] then
    redis.call('HDEL', KEYS[1], all[i])
    gone[#gone + 1] = all[i]
  end
end
return gone
"""

# the sessions node ARGV[1] hosted: out of ``home``, and their customers out of ``customers``
_UNHOST_NODE = """
local hosted, gone = {}, 0
local homes = redis.call('HGETALL', KEYS[1])
for i = 1, #homes, 2 do
  if homes[i + 1] == ARGV[1] then
    hosted[homes[i]] = true
    redis.call('HDEL', KEYS[1], homes[i])
    gone = gone + 1
  end
end
local customers = redis.call('HGETALL', KEYS[2])
for i = 1, #customers, 2 do
  if hosted[customers[i + 1]] then redis.call('HDEL', KEYS[2], customers[i]) end
end
return gone
"""


class ClusterError(VbankError):
    """Redis cannot be used at start-up."""


class Cluster:
    """This node's link to the others."""

    def __init__(self, url: str, node: str, prefix: str = "vbank:",
                 timeout_s: float = 15.0) -> None:
        self.url = url
        self.node = node
        self.prefix = prefix
        #: a node silent this long is presumed dead and taken out of the shared state
        self.timeout_s = timeout_s
        self.redis: Redis = Redis.from_url(url, decode_responses=True, socket_timeout=5,
                                           socket_connect_timeout=2, health_check_interval=10,
                                           client_name=f"vbank-{node}")
        self._depart = self.redis.register_script(_DEPART)
        self._forget = self.redis.register_script(_FORGET)
        self._unhost_node = self.redis.register_script(_UNHOST_NODE)
        self._asks: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.epoch: str | None = None
        self._handler: Handler | None = None
        self._on_reset: Callable[[], Awaitable[None]] | None = None
        self._on_dead: Callable[[str], Awaitable[None]] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._serial: dict[str, asyncio.Future[None]] = {}
        self.resets = 0  # how many times Redis was found emptied (for tests and metrics)

    def key(self, name: str) -> str:
        return self.prefix + name

    async def start(self, handler: Handler, on_reset: Callable[[], Awaitable[None]],
                    on_dead: Callable[[str], Awaitable[None]]) -> None:
        """Join the branch: first take out what a previous run of this node left (its
        people, tellers and waiting customers are gone with its sockets), then listen."""
        self._handler, self._on_reset, self._on_dead = handler, on_reset, on_dead
        try:
            await self.redis.ping()
            self.epoch = await self._current_epoch()
            if await self.redis.exists(self.key(f"alive:{self.node}")):
                log.warning("a node named %s said it was alive less than %.0f s ago: if it "
                            "still runs, give this one another name (--node)", self.node,
                            self.timeout_s)
            await on_dead(self.node)
            await self._beat()
        except RedisError as exc:
            raise ClusterError(f"Redis at {self.url} cannot be reached: {exc}") from exc
        subscribed = asyncio.Event()
        self._tasks = [asyncio.create_task(self._listen(subscribed)),
                       asyncio.create_task(self._read_inbox()),
                       asyncio.create_task(self._watch())]
        await asyncio.wait_for(subscribed.wait(), 10)

    async def stop(self) -> None:
        """Stop listening and say goodbye, in at most about ``2 * STOP_S``: a Redis read
        that does not give way to its cancellation, or a goodbye Redis does not answer,
        must not hold the server's shutdown (a test once hung here, after Redis had cut
        this node's connections)."""
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            _, stuck = await asyncio.wait(self._tasks, timeout=STOP_S)
            if stuck:
                log.warning("%d of this node's Redis tasks did not stop within %.0f s: "
                            "left behind", len(stuck), STOP_S)
        try:
            async with asyncio.timeout(STOP_S):
                with contextlib.suppress(RedisError):  # stopped, not dead: nothing to take out
                    await self.redis.srem(self.key("nodes"), self.node)
                    await self.redis.delete(self.key(f"alive:{self.node}"),
                                            self.key(f"sockets:{self.node}"))
                await self.redis.aclose()
        except TimeoutError:
            log.warning("Redis did not take this node's goodbye within %.0f s", STOP_S)

    # ------------------------------------------------------------------ directory
    async def arrived(self, username: str) -> None:
        await self._quietly(self.redis.hset(self.key("where"), username, self.node))

    async def departed(self, username: str) -> None:
        await self._quietly(self._depart(keys=[self.key("where")],
                                         args=[username, self.node]))

    async def host(self, session_id: str, customer: str) -> None:
        """This node hosts ``customer``'s session ``session_id``."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.hset(self.key("home"), session_id, self.node)
        pipe.hset(self.key("customers"), customer, session_id)
        await self._quietly(pipe.execute())

    async def unhost(self, session_id: str, customer: str) -> None:
        await self._quietly(self.redis.hdel(self.key("home"), session_id))
        await self._quietly(self._depart(keys=[self.key("customers")],
                                         args=[customer, session_id]))

    async def session_of(self, customer: str) -> str | None:
        """The customer's live session, on whichever node."""
        return await self._look_up("customers", customer)

    async def where_is(self, username: str) -> str | None:
        """The node a person is signed in on."""
        return await self._look_up("where", username)

    async def home_of(self, session_id: str) -> str | None:
        """The node hosting a session."""
        return await self._look_up("home", session_id)

    async def _look_up(self, directory: str, name: str) -> str | None:
        """An entry of the directory; None also while Redis is away."""
        try:
            value = await self.redis.hget(self.key(directory), name)
        except RedisError:
            return None
        return str(value) if value else None

    async def nodes(self) -> list[str]:
        """The nodes alive now (each refreshes its key every second)."""
        names = sorted(str(n) for n in await self.redis.smembers(self.key("nodes")))
        pipe = self.redis.pipeline(transaction=False)
        for name in names:
            pipe.exists(self.key(f"alive:{name}"))
        return [n for n, alive in zip(names, await pipe.execute(), strict=True) if alive]

    async def homes(self) -> dict[str, str]:
        """Every session's hosting node."""
        return {str(k): str(v) for k, v in (await self.redis.hgetall(self.key("home"))).items()}

    async def forget_people(self, node: str) -> list[str]:
        """Take the people signed in on ``node`` out of the directory; who they were."""
        return [str(n) for n in await self._forget(keys=[self.key("where")], args=[node])]

    async def unhost_node(self, node: str) -> int:
        """Take the sessions ``node`` hosted out of the directory; how many."""
        return int(await self._unhost_node(keys=[self.key("home"), self.key("customers")],
                                           args=[node]))

    async def forget_node(self, node: str) -> None:
        await self.redis.srem(self.key("nodes"), node)
        await self.redis.delete(self.key(f"sockets:{node}"), self.key(f"inbox:{node}"))

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
        """Into ``node``'s inbox."""
        await self._post(node, kind, payload)

    async def tell_home(self, sid: str, kind: str, **payload: Any) -> None:
        """To the node hosting session ``sid``, if another."""
        node = await self.home_of(sid)
        if node and node != self.node:
            await self.tell(node, kind, **payload)

    async def broadcast(self, kind: str, **payload: Any) -> None:
        """To every other node."""
        await self._publish(self.key("all"), kind, payload)

    async def ask(self, node: str, kind: str, timeout: float = 5.0,
                  **payload: Any) -> dict[str, Any] | None:
        """Tell ``node`` and wait for what its handler returns; None if no answer came in
        ``timeout`` (the node stopped, Redis is away)."""
        ask = secrets.token_hex(8)
        answer: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._asks[ask] = answer
        try:
            await self._post(node, kind, payload, ask)
            return await asyncio.wait_for(answer, timeout)
        except TimeoutError:
            log.warning("%s: node %s did not answer", kind, node)
            return None
        finally:
            self._asks.pop(ask, None)

    def _envelope(self, kind: str, payload: dict[str, Any], ask: str = "") -> str:
        envelope = {"kind": kind, "from": self.node, "payload": payload}
        if ask:
            envelope["ask"] = ask
        return json.dumps(envelope)

    async def _post(self, node: str, kind: str, payload: dict[str, Any],
                    ask: str = "") -> None:
        try:
            await self.redis.xadd(self.key(f"inbox:{node}"),
                                  {"m": self._envelope(kind, payload, ask)},
                                  maxlen=INBOX_MAX, approximate=True)
        except RedisError as exc:
            log.warning("%s to node %s is lost: %s", kind, node, exc)

    async def _publish(self, channel: str, kind: str, payload: dict[str, Any]) -> None:
        try:
            await self.redis.publish(channel, self._envelope(kind, payload))
        except RedisError as exc:
            log.warning("%s to %s is lost: %s", kind, channel, exc)

    async def _quietly(self, command: Awaitable[Any]) -> None:
        """A directory write; while Redis is away it is redone by the reset that follows."""
        try:
            await command
        except RedisError as exc:
            log.warning("Redis is not reachable: %s", exc)

    # -------------------------------------------------------------------- listening
    async def _read_inbox(self) -> None:
        """This node's messages, in the order sent; what came while Redis could not be
        reached is read once it can (from the last one read). Read ones are trimmed off."""
        inbox, last = self.key(f"inbox:{self.node}"), "0-0"
        while True:
            try:
                batches: Any = await self.redis.xread({inbox: last}, count=100,
                                                      block=round(WATCH_S * 1000))
                for _, entries in batches or []:
                    for entry_id, fields in entries:
                        last = str(entry_id)
                        await self._receive(str(fields.get("m", "")))
                if batches:
                    await self.redis.xtrim(inbox, minid=last)
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                log.warning("reading this node's messages: %s; again in a moment", exc)
                await asyncio.sleep(WATCH_S / 2)

    async def _listen(self, subscribed: asyncio.Event) -> None:
        channels = (self.key("all"),)
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
            ask = str(envelope.get("ask", ""))
        except (ValueError, KeyError, TypeError):
            log.warning("a malformed message between nodes was dropped")
            return
        if kind == "answer":
            waiting = self._asks.get(str(payload.get("ask")))
            if waiting is not None and not waiting.done():
                waiting.set_result(dict(payload.get("answer") or {}))
            return
        if (sender == self.node and kind != "deliver") or self._handler is None:
            return  # our own broadcast
        handling = self._handle(kind, payload, sender, ask)
        if kind in SERIAL:
            user = payload.get("user")
            who = str(user.get("username")) if isinstance(user, dict) else str(
                payload.get("customer") or sender)
            self._chain(who, handling)
        elif kind == "deliver":
            await handling  # in order, and quick
        else:
            self._chain(secrets.token_hex(4), handling)

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

    async def _handle(self, kind: str, payload: dict[str, Any], sender: str,
                      ask: str) -> None:
        assert self._handler is not None
        answer: dict[str, Any] | None = None
        try:
            answer = await self._handler(kind, payload)
        except Exception:
            log.exception("handling %s from another node", kind)
        if ask:
            await self.tell(sender, "answer", ask=ask, answer=answer or {})

    # ---------------------------------------------------------------------- epoch
    async def _current_epoch(self) -> str:
        """The epoch, made if Redis has none (first start, or restarted empty)."""
        await self.redis.set(self.key("epoch"), secrets.token_hex(8), nx=True)
        return str(await self.redis.get(self.key("epoch")))

    async def _beat(self) -> bool:
        """Say this node is alive; False if its key had expired meanwhile (it was silent
        for ``timeout_s``: the others may have taken its part out)."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.set(self.key(f"alive:{self.node}"), "1", ex=max(1, round(self.timeout_s)),
                 get=True)
        pipe.sadd(self.key("nodes"), self.node)
        before, _ = await pipe.execute()
        return before is not None

    async def _watch(self) -> None:
        lapsed = False
        while True:
            await asyncio.sleep(WATCH_S)
            try:
                lapsed = not await self._beat() or lapsed
                epoch = await self._current_epoch()
                if epoch != self.epoch or lapsed:
                    log.warning("Redis lost this node's part of the branch's state (%s): "
                                "putting it back", "Redis restarted?" if epoch != self.epoch
                                else f"silent for {self.timeout_s:.0f} s")
                    assert self._on_reset is not None
                    await self._on_reset()
                    self.epoch, lapsed = epoch, False  # only once all was put back
                    self.resets += 1
                await self._reap()
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                log.warning("Redis is not reachable: %s", exc)
            except Exception:
                log.exception("putting this node's state back into Redis failed")

    async def _reap(self) -> None:
        """Take out the nodes that stopped saying they are alive (one node does each)."""
        names = {str(n) for n in await self.redis.smembers(self.key("nodes"))}
        alive = set(await self.nodes())
        for name in sorted(names - alive - {self.node}):
            lock = self.key(f"reaping:{name}")
            if not await self.redis.set(lock, self.node, nx=True, ex=30):
                continue  # another node is at it
            log.warning("node %s has been silent for %.0f s: taking its part out",
                        name, self.timeout_s)
            assert self._on_dead is not None
            try:
                await self._on_dead(name)
            except Exception:  # the lock lapses and some node tries again
                log.exception("taking out node %s failed", name)
            else:
                await self.redis.delete(lock)
