"""The services a branch offers: fixed ids other tools rely on, names in both languages."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Service:
    """One kind of business a customer can queue for."""

    id: str
    name_en: str
    name_zh: str
    #: typical call length, the starting point of the estimated wait before real calls are seen
    handle_time_s: float
    #: after this long in the queue the digital human offers to serve the customer
    queue_threshold_s: float


SERVICES: dict[str, Service] = {
    s.id: s
    for s in (
        Service("loan_signing", "Loan signing", "贷款面签", 600.0, 180.0),
        Service("risk_assessment", "Risk assessment", "理财风险评估", 420.0, 180.0),
        Service("account_opening", "Account opening", "开户", 480.0, 180.0),
        Service("general_enquiry", "General enquiry", "综合咨询", 240.0, 120.0),
    )
}

#: The languages a customer can be served in (flow texts, the digital human's voice and
#: hearing); the first is the default.
LANGUAGES: tuple[str, ...] = ("en", "zh")

#: Customer tiers that get VIP priority in the queue, and how much.
TIER_PRIORITY: dict[str, int] = {"gold": 1, "platinum": 2, "diamond": 3}


def priority_for_tier(tier: str | None) -> int:
    """Queue priority of a customer tier: 0 for standard customers."""
    return TIER_PRIORITY.get((tier or "").lower(), 0)
