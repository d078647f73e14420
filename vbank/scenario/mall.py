"""Scenario set-up, actions and assertions for the points mall: items, redemptions, the books.

Mixed into ``ScenarioRun`` like ``BusinessActions``. ``setup: mall_items`` are created through
the admin endpoint under ids of their own (the file's id and a random suffix), so a file runs
again and again against the same server; ``redeem`` steps name the file's id and are sent with
the server's. When the scenario is over, what is left of those items' stock is taken back, so
nobody else buys them. A customer's points are read over HTTP as that customer.

A redemption the mall refuses (404 no such item, 409 out of stock, 422 too few points, over
the limit, tier, sale window) fails its step with the server's reason, unless the step says
``refused: REGEX`` (or ``refused: true``): then the refusal is what passes, and an order
placed fails it.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import time
from typing import TYPE_CHECKING, Any

import httpx

from vbank.scenario.actors import Actor, StepFailed
from vbank.scenario.expectations import number_problem
from vbank.scenario.lobby3d import LobbyActor

if TYPE_CHECKING:
    from vbank.scenario.model import Scenario
    from vbank.scenario.servers import Server

#: how long a redemption is retried (same Idempotency-Key) while the ledger is busy (503)
REDEEM_RETRY_S = 15.0
#: how long ``points: {earned}`` waits for rewards still on their way (they are paid just
#: after the business event that earned them)
EARNED_SETTLE_S = 10.0
#: the refusals of a redemption that are the mall saying no (not a broken request)
REFUSALS = (404, 409, 422)
#: transactions read per request (the endpoint's most)
TRANSACTIONS_PAGE = 500
#: an item id the server accepts has at most 32 characters; the runner's suffix takes 7
ITEM_ID_KEEP = 25


class MallActions:
    """The points-mall half of a scenario run (see ``ScenarioRun``)."""

    s: Scenario
    actors: dict[str, Actor]
    http: httpx.AsyncClient
    #: (server url, the file's item id) → the id the item was created under there
    items: dict[tuple[str, str], str]
    #: customer key → the id of their newest points transaction before the steps began
    points_from: dict[str, int]

    async def _admin(self, method: str, server: Server, path: str,
                     body: dict[str, Any] | None = None) -> dict[str, Any]:
        raise NotImplementedError

    async def _as(self, actor: Actor, method: str, path: str, **kwargs: Any) -> httpx.Response:
        raise NotImplementedError

    def _used_servers(self) -> list[Server]:
        raise NotImplementedError

    def _customer(self) -> Actor:
        raise NotImplementedError

    # ------------------------------------------------------------------ set-up
    async def _setup_mall(self) -> None:
        """Create ``setup: mall_items`` on every server the scenario uses."""
        for server in self._used_servers():
            for spec in self.s.setup.get("mall_items", []):
                own = f"{spec['id'][:ITEM_ID_KEEP]}-{secrets.token_hex(3)}"
                await self._admin("POST", server, "/api/v1/admin/mall/items",
                                  {**spec, "id": own, "name": spec.get("name", spec["id"])})
                self.items[(server.url, spec["id"])] = own

    async def _points_baseline(self) -> None:
        """Remember each customer's newest transaction: ``points: {earned}`` counts after it
        (so a starting balance is not counted as earned)."""
        for actor in self.actors.values():
            if actor.kind == "customer":
                self.points_from[actor.key] = await self._newest_transaction(actor)

    async def _withdraw_items(self) -> None:
        """Take back what is left of the scenario's items, so nobody else buys them."""
        for (url, _), own in self.items.items():
            server = next(s for s in self._used_servers() if s.url == url)
            with contextlib.suppress(StepFailed, httpx.HTTPError):
                listed = await self._admin_list(server, "/api/v1/mall/items")
                left = next((i["stock"] for i in listed if i["id"] == own), 0)
                if left:
                    await self._admin("POST", server, f"/api/v1/admin/mall/items/{own}/stock",
                                      {"quantity": -left})

    async def _admin_list(self, server: Server, path: str) -> list[dict[str, Any]]:
        r = await self.http.get(server.url + path, headers=server.headers())
        r.raise_for_status()
        return list(r.json())

    # ------------------------------------------------------------------ actions
    async def _do_redeem(self, actor: Actor, spec: dict[str, Any], _: int) -> None:
        item = self.items.get((actor.server, spec["item"]), spec["item"])
        if isinstance(actor, LobbyActor):
            placed, words = await actor.redeem(item, int(spec.get("quantity", 1)))
            self._redeemed(spec, placed, words)
            return
        body = {"item_id": item, "quantity": spec.get("quantity", 1)}
        key = f"scenario-{secrets.token_hex(12)}"  # one redemption meant, one key
        deadline = time.monotonic() + REDEEM_RETRY_S
        while True:
            try:
                r = await self._as(actor, "POST", "/api/v1/mall/redemptions", json=body,
                                   headers={"Idempotency-Key": key})
            except httpx.TransportError:  # the same key again cannot redeem twice
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.5)
                continue
            if r.status_code != 503 or time.monotonic() > deadline:
                break
            await asyncio.sleep(float(r.headers.get("Retry-After", "1")))
        refused = spec.get("refused")
        wanted = "" if refused in (None, False) else (
            "a refusal" if refused is True else f"a refusal matching {refused!r}")
        if r.status_code in (200, 201):
            if wanted:
                order = r.json()
                raise StepFailed(f"redeem: wanted {wanted}, but order {order['order_id']} was "
                                 f"placed ({order['points_spent']} points, balance "
                                 f"{order['balance']})")
            return
        reason = f"redeem refused ({r.status_code}): {_detail(r)}"
        if wanted and r.status_code in REFUSALS and (
                refused is True or re.search(str(refused), _detail(r))):
            return
        raise StepFailed(reason + (f"; wanted {wanted}" if wanted else ""))

    def _redeemed(self, spec: dict[str, Any], placed: bool, words: str) -> None:
        """A redemption at the 3D shelf, judged by what the shelf said."""
        refused = spec.get("refused")
        if placed and refused not in (None, False):
            raise StepFailed(f"redeem: wanted a refusal, but the shelf says {words!r}")
        if not placed and (refused in (None, False) or (
                refused is not True and not re.search(str(refused), words))):
            raise StepFailed(f"redeem at the shelf: {words}" +
                             (f"; wanted a refusal matching {refused!r}" if refused else ""))

    # ------------------------------------------------------------------ reads
    async def _points_balance(self, actor: Actor) -> int:
        if actor.kind != "customer":
            raise StepFailed(f"points_balance: {actor.key} is a {actor.kind}")
        r = await self._as(actor, "GET", "/api/v1/points")
        if r.status_code != 200:
            raise StepFailed(f"GET /api/v1/points: {r.status_code} {_detail(r)}")
        return int(r.json()["balance"])

    async def _newest_transaction(self, actor: Actor) -> int:
        return max((t["id"] for t in await self._transactions_page(actor, 1, None)), default=0)

    async def _transactions_after(self, actor: Actor, after: int) -> list[dict[str, Any]]:
        """The customer's transactions newer than id ``after``, newest first."""
        out: list[dict[str, Any]] = []
        before: int | None = None
        while True:
            page = await self._transactions_page(actor, TRANSACTIONS_PAGE, before)
            out += [t for t in page if t["id"] > after]
            if len(page) < TRANSACTIONS_PAGE or min(t["id"] for t in page) <= after:
                return out
            before = min(t["id"] for t in page)

    async def _transactions_page(self, actor: Actor, limit: int,
                                 before: int | None) -> list[dict[str, Any]]:
        params = {"limit": limit, **({"before": before} if before else {})}
        r = await self._as(actor, "GET", "/api/v1/points/transactions", params=params)
        if r.status_code != 200:
            raise StepFailed(f"GET /api/v1/points/transactions: {r.status_code} {_detail(r)}")
        return list(r.json())

    # ------------------------------------------------------------------ assertions
    async def _assert_points(self, want: dict[str, Any]) -> None:
        """Points the customer earned during the scenario (earn transactions after the
        starting balance; refunds and spending do not count)."""
        actor = self.actors[want["actor"]] if "actor" in want else self._customer()
        deadline = time.monotonic() + EARNED_SETTLE_S
        while True:
            since = await self._transactions_after(actor, self.points_from[actor.key])
            earned = [t for t in since if t["kind"] == "earn" and t["points"] > 0]
            why = number_problem(sum(t["points"] for t in earned), want["earned"],
                                 "points earned")
            if why is None:
                return
            if time.monotonic() > deadline:
                said = [f"{t['reason']} {t['points']}" for t in reversed(earned)]
                raise StepFailed(f"points: {why} ({', '.join(said) or 'nothing earned'})")
            await asyncio.sleep(0.5)

    async def _assert_ledger(self, _: str) -> None:
        """The books of every server used: balances are sums, nothing below zero."""
        for server in self._used_servers():
            result = await self._admin("GET", server, "/api/v1/admin/points/consistency")
            problems = list(result.get("problems") or [])
            if not result.get("consistent") or problems:
                more = f" and {len(problems) - 5} more" if len(problems) > 5 else ""
                raise StepFailed(f"ledger on {server.url}: " + "; ".join(problems[:5]) + more)


def _detail(r: httpx.Response) -> str:
    """The server's reason for a refusal (FastAPI's ``detail``), else the body's start."""
    try:
        detail = r.json().get("detail")
    except (ValueError, AttributeError):
        return r.text[:200]
    if isinstance(detail, list):  # a request the model refused: its messages
        return "; ".join(str(d.get("msg", d)) if isinstance(d, dict) else str(d)
                         for d in detail)
    return str(detail) if detail is not None else r.text[:200]
