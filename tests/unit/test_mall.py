"""The mall's rules without a database: prices, who may redeem what, lotteries, task chains,
and the mall file's errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vbank.domain.flows import Text
from vbank.domain.ledger import InsufficientPoints, Tier
from vbank.domain.mall import (
    Item,
    Lottery,
    MallFileError,
    NotOnSale,
    OutOfStock,
    OverLimit,
    Prize,
    TierBenefit,
    TierTooLow,
    check_draw,
    check_redemption,
    load_mall,
    parse_mall,
    price,
)

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
NONE = TierBenefit()
GOLD = TierBenefit(discount_pct=10, early_access_min=10)


def item(**kw: object) -> Item:
    base: dict[str, object] = {"id": "mug", "name": Text("Mug", "杯子"), "points": 99,
                               "stock": 5}
    return Item(**{**base, **kw})  # type: ignore[arg-type]


def test_tier_discounts_round_up_and_never_apply_to_flash_sales() -> None:
    assert price(item(), 2, GOLD) == 2 * 90  # 99 × 0.9 = 89.1 → 90 each
    assert price(item(flash=True, starts_at=NOW), 2, GOLD) == 198
    assert price(item(), 1, NONE) == 99


def test_a_redemption_is_refused_for_the_reason_the_customer_needs_first() -> None:
    gold_only = item(tier=Tier.GOLD, per_customer_limit=1, stock=0)
    with pytest.raises(TierTooLow):  # before the limit, the stock or the balance
        check_redemption(gold_only, 2, Tier.SILVER, NONE, 0, 1, 0, NOW)
    with pytest.raises(OverLimit, match="limited to 1 per customer; you have 1"):
        check_redemption(gold_only, 1, Tier.GOLD, GOLD, 0, 1, 0, NOW)
    with pytest.raises(OutOfStock, match="out of stock"):
        check_redemption(gold_only, 1, Tier.PLATINUM, GOLD, 0, 0, 10_000, NOW)
    with pytest.raises(OutOfStock, match="only 2 of mug left"):
        check_redemption(item(), 3, Tier.STANDARD, NONE, 2, 0, 10_000, NOW)
    with pytest.raises(InsufficientPoints):
        check_redemption(item(), 1, Tier.STANDARD, NONE, 5, 0, 98, NOW)
    assert check_redemption(item(), 1, Tier.STANDARD, NONE, 5, 0, 99, NOW) == 99


def test_sale_windows_and_early_access_for_higher_tiers() -> None:
    flash = item(flash=True, starts_at=NOW + timedelta(minutes=5),
                 ends_at=NOW + timedelta(hours=1))
    with pytest.raises(NotOnSale):
        check_redemption(flash, 1, Tier.STANDARD, NONE, 5, 0, 1000, NOW)
    assert check_redemption(flash, 1, Tier.GOLD, GOLD, 5, 0, 1000, NOW) == 99  # 10 min early
    with pytest.raises(NotOnSale):  # the end is the end for everyone
        check_redemption(flash, 1, Tier.GOLD, GOLD, 5, 0, 1000, NOW + timedelta(hours=1))


LOTTERY = Lottery("draw", Text("Draw", "抽奖"), cost=20, out_of=100, prizes=(
    Prize("big", Text("Big", "大奖"), odds=10, stock=2),
    Prize("small", Text("Small", "小奖"), odds=40, stock=5, points=10)))


def test_a_roll_wins_the_prize_whose_odds_it_lands_in_while_the_prize_lasts() -> None:
    stock = {"big": 1, "small": 1}
    assert LOTTERY.prize_for(0, stock).id == "big"  # type: ignore[union-attr]
    assert LOTTERY.prize_for(9, stock).id == "big"  # type: ignore[union-attr]
    assert LOTTERY.prize_for(10, stock).id == "small"  # type: ignore[union-attr]
    assert LOTTERY.prize_for(50, stock) is None  # the rest wins nothing
    assert LOTTERY.prize_for(5, {"big": 0, "small": 3}) is None  # gone: never another prize
    with pytest.raises(ValueError):
        LOTTERY.prize_for(100, stock)


@given(st.lists(st.integers(0, 99), max_size=60))
def test_a_pool_never_gives_more_than_it_holds(rolls: list[int]) -> None:
    stock = {p.id: p.stock for p in LOTTERY.prizes}
    won = {p.id: 0 for p in LOTTERY.prizes}
    for roll in rolls:
        prize = LOTTERY.prize_for(roll, stock)
        if prize is not None:
            stock[prize.id] -= 1
            won[prize.id] += 1
    assert all(left >= 0 for left in stock.values())
    assert all(won[p.id] <= p.stock for p in LOTTERY.prizes)
    assert won["big"] == min(2, sum(1 for r in rolls if r < 10))


def test_draws_are_refused_outside_the_window_over_the_day_limit_or_short_of_points() -> None:
    limited = Lottery("d", Text("D", "D"), 20, 100, LOTTERY.prizes, per_customer_per_day=2,
                      starts_at=NOW, ends_at=NOW + timedelta(days=1))
    with pytest.raises(NotOnSale):
        check_draw(limited, 0, 100, NOW - timedelta(seconds=1))
    with pytest.raises(OverLimit, match="2 draws a day"):
        check_draw(limited, 2, 100, NOW)
    with pytest.raises(InsufficientPoints):
        check_draw(limited, 0, 19, NOW)
    assert check_draw(limited, 1, 20, NOW) == 20


def test_a_task_chain_counts_steps_done_in_order_inside_its_window() -> None:
    chain = load_mall().task_chains["getting_started"]
    t = [NOW + timedelta(minutes=i) for i in range(5)]
    assert chain.progress([]) == 0
    # signing before assessing does not count for the sign step; assessing after a visit does
    assert chain.progress([(t[0], "contract_signed"), (t[1], "lobby_visit"),
                           (t[2], "risk_assessed")]) == 2
    assert chain.progress([(t[3], "contract_signed"), (t[1], "lobby_visit"),
                           (t[2], "risk_assessed")]) == 3


def test_the_shipped_mall_file_loads_with_pictures_for_every_item() -> None:
    mall = load_mall()
    assert {"coffee_voucher", "flash_rice_cooker"} <= set(mall.items)
    assert all(i.image for i in mall.items.values())
    assert mall.earn["risk_assessed"].per_day and not mall.earn["contract_signed"].per_day
    lottery = mall.lotteries["lucky_draw"]
    assert sum(p.odds for p in lottery.prizes) <= lottery.out_of


@pytest.mark.parametrize("doc,error", [
    ({"items": [{"id": "Bad Id", "points": 1, "stock": 1}]}, r"items\[0\]: id must match"),
    ({"items": [{"id": "a", "points": 0, "stock": 1}]}, r"items\[0\] \(a\): points must be"),
    ({"items": [{"id": "a", "points": 1, "stock": 1, "flash": True}]}, "flash sale needs"),
    ({"items": [{"id": "a", "points": 1, "stock": 1, "starts_at": "2026-01-01T00:00"}]},
     "with a zone"),
    ({"lotteries": [{"id": "l", "cost": 1, "out_of": 10,
                     "prizes": [{"id": "p", "odds": 11, "stock": 1}]}]}, "more than out_of"),
    ({"earn": {"a": {"points": 1}},
      "task_chains": [{"id": "c", "steps": ["a", "b"], "points": 5}]},
     r"step 'b' is not an earn rule"),
    ({"colour": "red"}, "unknown key colour"),
])
def test_a_broken_mall_file_says_where_and_what(doc: dict[str, object], error: str) -> None:
    with pytest.raises(MallFileError, match=error):
        parse_mall(doc, "mall.yaml")
