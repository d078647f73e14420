"""Points for what customers do in the branch, by the earn rules of ``scenes/mall.yaml``.

``award`` is called where the thing happened (a contract signed in a call, a risk assessment,
a rated call, a lobby visit); it earns through the points desk under a key that makes each
reward happen once (per session, or per calendar day for daily rules) and tells the
customer. Earning never breaks the business that earned it: a failure is logged and the
reward can be given again later under the same key.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from vbank import VbankError
from vbank.domain.mall import Mall
from vbank.store.points import EarnResult, PointsDesk

log = logging.getLogger(__name__)
Notify = Callable[[str, dict[str, Any]], Awaitable[None]]


class Rewards:
    def __init__(self, desk: PointsDesk, mall: Mall, notify: Notify) -> None:
        self.desk = desk
        self.mall = mall
        self._notify = notify

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
        return result
