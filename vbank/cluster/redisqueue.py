"""The branch's queues and tellers in Redis, shared by every node.

Keys (under the prefix, ``vbank:`` by default):

- ``q:<service>``: a sorted set of waiting session ids; the score orders them as
  ``domain.queue.Ticket.key`` does (requeued first, then priority, then arrival);
- ``ticket:<session id>``: the ticket's fields, including the node hosting the session;
- ``teller:<name>`` (status, skills, session, node) and the set ``tellers``.

Every command that reads and then writes is one Lua script, so it runs whole: an ``accept``
on node 1 and one on node 2 can never take the same ticket, and a teller set ``away`` never
receives a customer. Arrival order is the enqueue time in milliseconds, not a counter, so
that queues rebuilt from the database after Redis lost its data
(``vbank.branch.nodes.OtherNodes.rebuild``) keep the order customers came in.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from vbank.cluster.store import QueueUnavailable
from vbank.domain.queue import (
    AlreadyQueued,
    Assignment,
    QueueEmpty,
    Teller,
    TellerNotAvailable,
    TellerStatus,
    Ticket,
    UnknownService,
)

_ENQUEUE = """
local p, sid = ARGV[1], ARGV[2]
if redis.call('EXISTS', p..'ticket:'..sid) == 1 then return 0 end
redis.call('HSET', p..'ticket:'..sid, unpack(ARGV, 5))
redis.call('ZADD', p..'q:'..ARGV[4], ARGV[3], sid)
return 1
"""

_REMOVE = """
local key = ARGV[1]..'ticket:'..ARGV[2]
local fields = redis.call('HGETALL', key)
if #fields == 0 then return false end
redis.call('ZREM', ARGV[1]..'q:'..redis.call('HGET', key, 'service'), ARGV[2])
redis.call('DEL', key)
return fields
"""

# ARGV: prefix, teller, service ('' for any of the teller's skills)
_ACCEPT = """
local p, tid, only = ARGV[1], ARGV[2], ARGV[3]
local tkey = p..'teller:'..tid
local status = redis.call('HGET', tkey, 'status')
if status ~= 'available' then return {'not_available', status or 'offline'} end
local best, bestscore
for skill in string.gmatch(redis.call('HGET', tkey, 'skills') or '', '[^,]+') do
  if only == '' or only == skill then
    local top = redis.call('ZRANGE', p..'q:'..skill, 0, 0, 'WITHSCORES')
    if #top > 0 then
      local s = tonumber(top[2])
      if best == nil or s < bestscore or (s == bestscore and top[1] < best) then
        best, bestscore = top[1], s
      end
    end
  end
end
if best == nil then return {'empty'} end
local key = p..'ticket:'..best
redis.call('ZREM', p..'q:'..redis.call('HGET', key, 'service'), best)
local fields = redis.call('HGETALL', key)
redis.call('DEL', key)
redis.call('HSET', tkey, 'status', 'busy', 'session', best)
return {'ok', best, fields}
"""

# ARGV: prefix, teller, status, skills given ('1'/'0'), skills, node
_SET_TELLER = """
local p, tid, status = ARGV[1], ARGV[2], ARGV[3]
local tkey = p..'teller:'..tid
if ARGV[4] == '1' or redis.call('HEXISTS', tkey, 'skills') == 0 then
  redis.call('HSET', tkey, 'skills', ARGV[5])
end
local session = redis.call('HGET', tkey, 'session') or ''
if session ~= '' and status == 'available' then status = 'busy' end
redis.call('HSET', tkey, 'status', status, 'node', ARGV[6], 'session', session)
redis.call('SADD', p..'tellers', tid)
return redis.call('HGETALL', tkey)
"""

_RELEASE = """
local tkey = ARGV[1]..'teller:'..ARGV[2]
if redis.call('EXISTS', tkey) == 0 then return 0 end
if ARGV[3] ~= '' and redis.call('HGET', tkey, 'session') ~= ARGV[3] then return 0 end
redis.call('HSET', tkey, 'session', '')
if redis.call('HGET', tkey, 'status') == 'busy' then
  redis.call('HSET', tkey, 'status', 'available')
end
return 1
"""

_REMOVE_TELLER = """
local tkey = ARGV[1]..'teller:'..ARGV[2]
local fields = redis.call('HGETALL', tkey)
redis.call('DEL', tkey)
redis.call('SREM', ARGV[1]..'tellers', ARGV[2])
if #fields == 0 then return false end
return fields
"""

#: score bands: requeued tickets before all others, then priority (0-10), then arrival (ms)
_HEAD_BAND, _PRIORITY_BAND = 4e14, 2e13


def score(ticket: Ticket) -> float:
    priority = min(10, max(0, ticket.priority))
    return (0 if ticket.head else _HEAD_BAND) + (10 - priority) * _PRIORITY_BAND + ticket.seq


def _pairs(flat: list[Any]) -> dict[str, str]:
    return {str(flat[i]): str(flat[i + 1]) for i in range(0, len(flat), 2)}


def _ticket(session_id: str, fields: Mapping[str, str]) -> Ticket:
    return Ticket(session_id, fields["customer"], fields["service"], int(fields["priority"]),
                  float(fields["enqueued_at"]), int(fields["seq"]), fields.get("head") == "1",
                  fields.get("customer_name", ""), fields.get("tier", ""),
                  fields.get("node", ""), fields.get("language", "en"))


def _teller(teller_id: str, fields: Mapping[str, str]) -> Teller:
    return Teller(teller_id, frozenset(s for s in fields.get("skills", "").split(",") if s),
                  TellerStatus(fields.get("status", "away")), fields.get("session") or None)


class RedisQueue:
    """``QueueStore`` in Redis. Redis faults come out as ``QueueUnavailable``."""

    def __init__(self, redis: Redis, node: str, handle_time_s: Mapping[str, float],
                 prefix: str = "vbank:") -> None:
        self.redis = redis
        self.node = node
        self.prefix = prefix
        #: average call lengths, learned from this node's calls (an estimate, not a record)
        self.handle_time_s = dict(handle_time_s)
        self._scripts = {name: redis.register_script(src) for name, src in (
            ("enqueue", _ENQUEUE), ("remove", _REMOVE), ("accept", _ACCEPT),
            ("set_teller", _SET_TELLER), ("release", _RELEASE),
            ("remove_teller", _REMOVE_TELLER))}
        self._staff: tuple[float, list[Teller]] = (0.0, [])

    def clock(self) -> float:
        return time.time()  # tickets are compared across nodes: wall time

    async def _run(self, name: str, *args: Any) -> Any:
        try:
            return await self._scripts[name](args=[self.prefix, *args])
        except RedisError as exc:
            raise QueueUnavailable(exc) from exc

    async def _call(self, coro: Any) -> Any:
        try:
            return await coro
        except RedisError as exc:
            raise QueueUnavailable(exc) from exc

    # ------------------------------------------------------------------ customers
    async def enqueue(self, session_id: str, customer: str, service: str, priority: int,
                      now: float, customer_name: str = "", tier: str = "",
                      language: str = "en") -> Ticket:
        if service not in self.handle_time_s:
            raise UnknownService(service)
        ticket = Ticket(session_id, customer, service, priority, now, int(now * 1000),
                        customer_name=customer_name, tier=tier, node=self.node,
                        language=language)
        await self._put(ticket)
        return ticket

    async def requeue_at_head(self, ticket: Ticket) -> Ticket:
        again = Ticket(ticket.session_id, ticket.customer, ticket.service, ticket.priority,
                       ticket.enqueued_at, ticket.seq, True, ticket.customer_name,
                       ticket.tier, ticket.node or self.node, ticket.language)
        await self._put(again)
        return again

    async def restore(self, ticket: Ticket) -> None:
        await self._put(ticket)

    async def _put(self, t: Ticket) -> None:
        fields = {"customer": t.customer, "service": t.service, "priority": t.priority,
                  "enqueued_at": repr(t.enqueued_at), "seq": t.seq, "head": int(t.head),
                  "customer_name": t.customer_name, "tier": t.tier, "node": t.node,
                  "language": t.language}
        flat = [str(v) for kv in fields.items() for v in kv]
        if not await self._run("enqueue", t.session_id, repr(score(t)), t.service, *flat):
            raise AlreadyQueued(t.session_id)

    async def remove(self, session_id: str) -> Ticket | None:
        fields = await self._run("remove", session_id)
        return _ticket(session_id, _pairs(fields)) if fields else None

    async def waiting(self, service: str) -> list[Ticket]:
        ids = await self._call(self.redis.zrange(f"{self.prefix}q:{service}", 0, -1))
        rows = await self._hashes("ticket:", ids)
        return [_ticket(sid, row) for sid, row in zip(ids, rows, strict=True) if row]

    async def _hashes(self, kind: str, names: list[str]) -> list[dict[str, str]]:
        """Each of ``names``' hash (``kind`` is ``ticket:`` or ``teller:``), in one trip."""
        if not names:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for name in names:
            pipe.hgetall(f"{self.prefix}{kind}{name}")
        return list(await self._call(pipe.execute()))

    async def position(self, session_id: str) -> int:
        service = await self._call(self.redis.hget(f"{self.prefix}ticket:{session_id}",
                                                   "service"))
        rank = None if service is None else await self._call(
            self.redis.zrank(f"{self.prefix}q:{service}", session_id))
        if rank is None:
            raise KeyError(session_id)
        return int(rank) + 1

    async def estimated_wait_s(self, session_id: str, position: int | None = None) -> float:
        service = await self._call(self.redis.hget(f"{self.prefix}ticket:{session_id}",
                                                   "service"))
        if service is None:
            raise KeyError(session_id)
        pos = position if position is not None else await self.position(session_id)
        return await self.estimate(service, pos)

    async def estimate(self, service: str, position: int) -> float:
        if service not in self.handle_time_s:
            raise UnknownService(service)
        at, tellers = self._staff
        if time.monotonic() - at > 0.5:  # one read of the tellers serves a whole broadcast
            tellers = await self.tellers()
            self._staff = (time.monotonic(), tellers)
        staff = sum(1 for t in tellers if service in t.skills
                    and t.status is not TellerStatus.AWAY)
        rounds = -(-position // max(1, staff))
        return rounds * self.handle_time_s[service]

    async def lengths(self) -> dict[str, int]:
        pipe = self.redis.pipeline(transaction=False)
        for service in self.handle_time_s:
            pipe.zcard(f"{self.prefix}q:{service}")
        counts = await self._call(pipe.execute())
        return dict(zip(self.handle_time_s, (int(n) for n in counts), strict=True))

    # -------------------------------------------------------------------- tellers
    async def set_teller(self, teller_id: str, status: TellerStatus,
                         skills: Iterable[str] | None = None) -> Teller:
        given = list(skills) if skills is not None else []
        unknown = [s for s in given if s not in self.handle_time_s]
        if unknown:
            raise UnknownService(unknown[0])
        fields = await self._run("set_teller", teller_id, status.value,
                                 "1" if skills is not None else "0", ",".join(sorted(given)),
                                 self.node)
        self._staff = (0.0, [])
        return _teller(teller_id, _pairs(fields))

    async def teller(self, teller_id: str) -> Teller | None:
        fields = await self._call(self.redis.hgetall(f"{self.prefix}teller:{teller_id}"))
        return _teller(teller_id, fields) if fields else None

    async def tellers(self) -> list[Teller]:
        return [_teller(name, row) for name, row in await self.teller_records()]

    async def teller_records(self) -> list[tuple[str, dict[str, str]]]:
        """Every teller's stored fields, including the node they are signed in on."""
        names = sorted(await self._call(self.redis.smembers(f"{self.prefix}tellers")))
        rows = await self._hashes("teller:", names)
        return [(name, row) for name, row in zip(names, rows, strict=True) if row]

    async def remove_teller(self, teller_id: str) -> Teller | None:
        fields = await self._run("remove_teller", teller_id)
        self._staff = (0.0, [])
        return _teller(teller_id, _pairs(fields)) if fields else None

    async def accept(self, teller_id: str, now: float,
                     service: str | None = None) -> Assignment:
        answer = await self._run("accept", teller_id, service or "")
        if answer[0] == "not_available":
            raise TellerNotAvailable(teller_id, str(answer[1]))
        if answer[0] == "empty":
            raise QueueEmpty()
        ticket = _ticket(str(answer[1]), _pairs(answer[2]))
        return Assignment(ticket, teller_id, max(0.0, now - ticket.enqueued_at))

    async def bind(self, teller_id: str, session_id: str) -> None:
        """Put back a teller's call after Redis lost it (the teller's own node puts back
        their status and skills; a busy status stays busy)."""
        await self._call(self.redis.hset(f"{self.prefix}teller:{teller_id}",
                                         mapping={"status": "busy", "session": session_id}))

    async def release(self, teller_id: str, session_id: str = "") -> None:
        """The call ended: the teller is available again (if still in ``session_id``)."""
        await self._run("release", teller_id, session_id)

    def learn_handle_time(self, service: str, call_s: float, weight: float = 0.2) -> None:
        old = self.handle_time_s[service]
        self.handle_time_s[service] = (1 - weight) * old + weight * max(call_s, 1.0)
