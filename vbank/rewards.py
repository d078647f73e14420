"""Points for what customers do in the branch, by the earn rules of ``scenes/mall.yaml``.

``award`` is called where the thing happened (a contract signed in a call, a risk assessment,
a rated call, a lobby visit); it earns through the points desk under a key that makes each
reward happen once (per session, or per calendar day for daily rules) and tells the
customer. A step that completes a task chain (its events earned in order) also pays the
chain's reward, once. Earning never breaks the business that earned it: a failure is logged
and the reward can be given again later under the same key.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import async_sessionmaker

from vbank import VbankError
from vbank.domain.ledger import Tier
from vbank.domain.mall import Mall, MallError, check_redemption, parse_item
from vbank.store import mall as catalogue
from vbank.store.points import EarnResult, PointsDesk

log = logging.getLogger(__name__)
Notify = Callable[[str, dict[str, Any]], Awaitable[None]]


class Rewards:
    def __init__(self, desk: PointsDesk, mall: Mall, notify: Notify,
                 sessions: async_sessionmaker) -> None:
        self.desk = desk
        self.mall = mall
        self._notify = notify
        self._sessions = sessions

    async def award(self, customer: str, event: str, ref: str) -> EarnResult | None:
        """Earn ``event``'s points for ``ref`` (a session or assessment id), once."""
        rule = self.mall.earn.get(event)
        if rule is None:
            return None
        key = f"{event}:{datetime.now().astimezone():%Y-%m-%d}" if rule.per_day else \
            f"{event}:{ref}"
        try:
            result = await self.desk.earn(customer, key, rule.points, event, rule.growth)
        except VbankError as exc:
            log.warning("could not award %s to %s: %s", event, customer, exc)
            return None
        if result.earned:
            log.info("%s earned %d points for %s", customer, rule.points, event)
            await self._notify(customer, {"type": "points_earned", "event": event,
                                          "points": rule.points, "balance": result.balance})
            await self._chains(customer, event)
        return result

    async def facts(self, customer: str, now: datetime | None = None) -> dict[str, Any]:
        """The customer's balance and tier, and what they can redeem now (dearest first):
        what the digital human tells them when asked."""
        now = now or datetime.now(UTC)
        async with self._sessions() as db:
            account = await catalogue.account(db, customer)
            rows = await catalogue.items(db)
        tier = Tier(account["tier"])
        benefit = self.mall.benefit(tier)
        affordable, cheapest = [], None
        for row in rows:
            item = parse_item(row.spec, f"item {row.id}")
            try:
                cost = check_redemption(item, 1, tier, benefit, row.stock, 0, 10**12, now)
            except MallError:
                continue
            name = {"en": item.name.en, "zh": item.name.zh}
            if cost <= account["balance"]:
                affordable.append((name, cost))
            if cheapest is None or cost < cheapest[1]:
                cheapest = (name, cost)
        affordable.sort(key=lambda pair: -pair[1])
        return {"balance": account["balance"], "tier": tier.value, "affordable": affordable,
                "cheapest": cheapest}

    async def _chains(self, customer: str, event: str) -> None:
        for chain in self.mall.task_chains.values():
            if event not in chain.steps:
                continue
            try:
                async with self._sessions() as db:
                    done = chain.progress(await catalogue.events_earned(db, customer,
                                                                        chain.steps))
                if done < len(chain.steps):
                    continue
                result = await self.desk.earn(customer, f"chain:{chain.id}", chain.points,
                                              f"chain:{chain.id}")
            except (VbankError, SQLAlchemyError) as exc:
                log.warning("could not pay task chain %s to %s: %s", chain.id, customer, exc)
                continue
            if result.earned:
                log.info("%s completed task chain %s", customer, chain.id)
                await self._notify(customer, {"type": "points_earned", "event": "task_chain",
                                              "chain": chain.id, "points": chain.points,
                                              "balance": result.balance})
