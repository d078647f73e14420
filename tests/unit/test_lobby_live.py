"""The 3D client's pure parts of the live hall: presence interpolation, the queue board's
words, the mall shelf's selection and redemption flow, and the model the messages feed."""

from __future__ import annotations

import itertools
from dataclasses import astuple

import pytest

from client.lobby.board import QueueRow, columns, rows, wait_text
from client.lobby.live import BOARD, PRESENCE, SHELF, STATUS, LiveHall
from client.lobby.presence import Presence, Spot, turn
from client.lobby.shelf import Redeem, Shelf
from vbank.domain.flows import Text

BOARD_MESSAGE = [
    {"id": "loan_signing", "name": {"en": "Loan signing", "zh": "贷款面签"}, "length": 2,
     "estimated_wait_s": 725},
    {"id": "general_enquiry", "name": {"en": "General enquiry", "zh": "综合咨询"}, "length": 0,
     "estimated_wait_s": 20},
]
ITEMS = [
    {"id": "coffee_voucher", "name": {"en": "Coffee voucher", "zh": "咖啡券"}, "points": 80,
     "price": 80, "stock": 500, "per_customer_limit": 5, "bought": 0, "tier": "standard"},
    {"id": "umbrella", "name": {"en": "Folding umbrella", "zh": "折叠雨伞"}, "points": 300,
     "price": 270, "stock": 0, "per_customer_limit": 2, "bought": 0, "tier": "standard"},
    {"id": "silver_coin", "name": {"en": "Zodiac silver coin", "zh": "生肖纪念银币"},
     "points": 3000, "price": 2700, "stock": 10, "per_customer_limit": 1, "bought": 0,
     "tier": "gold"},
]


def avatar(avatar_id: str, x: float, y: float, heading: float = 0.0, tag: str = "Alice C."
           ) -> dict[str, object]:
    return {"id": avatar_id, "tag": tag, "x": x, "y": y, "heading": heading}


def keys() -> Shelf:
    """A shelf whose Idempotency-Keys are k1, k2, ... so that tests can name them."""
    counter = itertools.count(1)
    return Shelf(make_key=lambda: f"k{next(counter)}")


# ------------------------------------------------------------------ presence
def test_a_newcomer_appears_where_they_stand() -> None:
    presence = Presence(period_s=0.2)
    presence.welcome([avatar("a1", 1.0, 2.0, 90.0)], now=10.0)
    assert presence.spots(10.0) == {"a1": Spot(1.0, 2.0, 90.0)}
    assert presence.tag("a1") == "Alice C."


def test_an_update_glides_from_the_last_position_over_one_period() -> None:
    presence = Presence(period_s=0.2)
    presence.update([avatar("a1", 0.0, 0.0)], now=0.0)
    presence.update([avatar("a1", 2.0, -4.0)], now=1.0)
    assert presence.spots(1.0)["a1"] == Spot(0.0, 0.0, 0.0)
    assert astuple(presence.spots(1.05)["a1"]) == pytest.approx((0.5, -1.0, 0.0))
    assert astuple(presence.spots(1.1)["a1"]) == pytest.approx((1.0, -2.0, 0.0))


def test_an_avatar_arrives_at_the_server_position_and_stays() -> None:
    presence = Presence(period_s=0.2)
    presence.update([avatar("a1", 0.0, 0.0)], now=0.0)
    presence.update([avatar("a1", 3.0, 1.0, 45.0)], now=1.0)
    for later in (1.2, 1.5, 100.0):
        assert presence.spots(later)["a1"] == Spot(3.0, 1.0, 45.0)


def test_an_early_update_starts_from_where_the_avatar_is_drawn() -> None:
    presence = Presence(period_s=0.2)
    presence.update([avatar("a1", 0.0, 0.0)], now=0.0)
    presence.update([avatar("a1", 2.0, 0.0)], now=1.0)
    presence.update([avatar("a1", 2.0, 2.0)], now=1.1)  # halfway: drawn at x = 1
    assert astuple(presence.spots(1.1)["a1"]) == pytest.approx((1.0, 0.0, 0.0))  # no jump
    assert presence.spots(1.3)["a1"] == Spot(2.0, 2.0, 0.0)


def test_headings_turn_the_short_way_round() -> None:
    assert turn(350.0, 10.0, 0.5) == pytest.approx(0.0)
    assert turn(350.0, 10.0, 0.25) == pytest.approx(355.0)
    assert turn(10.0, 350.0, 0.5) == pytest.approx(0.0)
    assert turn(90.0, 270.0, 1.0) == pytest.approx(270.0)
    presence = Presence(period_s=0.2)
    presence.update([avatar("a1", 0.0, 0.0, 350.0)], now=0.0)
    presence.update([avatar("a1", 0.0, 0.0, 10.0)], now=1.0)
    assert presence.spots(1.1)["a1"].heading == pytest.approx(0.0, abs=1e-9)
    assert presence.spots(1.15)["a1"].heading == pytest.approx(5.0)


def test_avatar_left_removes_it_and_a_welcome_starts_over() -> None:
    presence = Presence(period_s=0.2)
    presence.update([avatar("a1", 0, 0), avatar("a2", 1, 1, tag="Bob L.")], now=0.0)
    assert presence.left("a1") and not presence.left("a1")
    assert set(presence.spots(1.0)) == {"a2"}
    presence.welcome([avatar("a3", 5, 5)], now=2.0, period_s=0.5, you="me")
    assert set(presence.spots(2.0)) == {"a3"} and presence.period_s == 0.5


def test_our_own_avatar_and_malformed_entries_are_not_drawn() -> None:
    presence = Presence()
    presence.welcome([avatar("me", 0, 0), {"id": "a1", "x": "far", "y": 0},
                      {"x": 1, "y": 1}, "nonsense", avatar("a2", 1, 1)], now=0.0, you="me")
    assert set(presence.spots(0.0)) == {"a2"}


# ------------------------------------------------------------------ the queue board
def test_the_board_shows_each_service_in_both_languages_with_the_wait_in_minutes() -> None:
    board = rows(BOARD_MESSAGE)
    assert board[0] == QueueRow("loan_signing", 2, 725.0, Text("Loan signing", "贷款面签"))
    names, waiting, wait = columns(board)
    assert names.splitlines() == ["Loan signing 贷款面签", "General enquiry 综合咨询"]
    assert waiting.splitlines() == ["2 waiting 人", "0 waiting 人"]
    assert wait.splitlines() == ["~12 min", "~0 min"]
    assert wait_text(90) == "~2 min"


def test_the_board_skips_entries_that_are_not_rows_and_names_unnamed_services() -> None:
    board = rows([{"id": "loan_signing", "length": 1, "estimated_wait_s": 60},
                  {"id": "x", "length": "many", "estimated_wait_s": 1}, None,
                  {"id": "new_service", "length": 3, "estimated_wait_s": 0}])
    assert [r.service for r in board] == ["loan_signing", "new_service"]
    assert columns(board)[0].splitlines() == ["Loan signing 贷款面签", "new_service"]


# ------------------------------------------------------------------ the shelf
def test_the_shelf_shows_the_customers_price_stock_and_tier() -> None:
    shelf = keys()
    shelf.stock(ITEMS)
    shelf.points({"balance": 430, "tier": "silver"})
    assert shelf.hud() == "430 points 积分 · Silver 银卡"
    lines = shelf.price_list().splitlines()
    assert lines[0] == "Coffee voucher 咖啡券  80 pts · 500 left 剩"
    assert lines[1] == "Folding umbrella 折叠雨伞  270 pts (list 300) · sold out 售罄"
    assert lines[2].endswith("10 left 剩 · Gold 金卡+")
    menu = shelf.menu().splitlines()
    assert menu[0] == "Points mall 积分商城   430 points 积分 · Silver 银卡"
    assert menu[2].startswith("> Coffee voucher") and menu[3].startswith("   Folding")


def test_choosing_cycles_round_the_ends_and_stays_on_the_item_when_restocked() -> None:
    shelf = keys()
    shelf.stock(ITEMS)
    shelf.select(-1)
    assert shelf.chosen().id == "silver_coin"
    shelf.select(1)
    shelf.select(1)
    assert shelf.chosen().id == "umbrella"
    shelf.stock(list(reversed(ITEMS)))
    assert shelf.chosen().id == "umbrella" and shelf.selected == 1


def test_a_redemption_has_one_key_reused_on_retry_until_settled() -> None:
    shelf = keys()
    shelf.stock(ITEMS)
    first = shelf.confirm()
    assert first == Redeem("coffee_voucher", "k1") and shelf.busy
    assert shelf.confirm() is None  # Enter again while it is on its way does nothing
    shelf.failed("no answer from the branch")
    assert shelf.notice == "no answer from the branch; press Enter to try again 请重试"
    assert shelf.confirm() == Redeem("coffee_voucher", "k1")  # the retry: the same key
    shelf.redeemed("coffee_voucher", 350)
    assert shelf.balance == 350 and shelf.pending is None
    assert shelf.notice == "Redeemed 已兑换: Coffee voucher 咖啡券"
    assert shelf.confirm() == Redeem("coffee_voucher", "k2")  # another one: a new key


def test_a_refusal_ends_the_attempt_and_shows_the_servers_words() -> None:
    shelf = keys()
    shelf.stock(ITEMS)
    shelf.select(1)
    assert shelf.confirm() == Redeem("umbrella", "k1")
    shelf.refused("umbrella is out of stock")
    assert shelf.notice == "Not redeemed 未兑换: umbrella is out of stock"
    assert not shelf.busy and shelf.pending is None
    assert shelf.confirm() == Redeem("umbrella", "k2")


def test_choosing_another_item_after_a_failure_is_a_new_redemption() -> None:
    shelf = keys()
    shelf.stock(ITEMS)
    shelf.confirm()
    shelf.failed("no answer")
    shelf.select(1)
    assert shelf.pending is None and shelf.notice == ""
    assert shelf.confirm() == Redeem("umbrella", "k2")


def test_an_empty_shelf_redeems_nothing() -> None:
    shelf = Shelf()
    assert shelf.confirm() is None and shelf.hud() == ""
    assert "Loading the shelf" in shelf.menu()


# ------------------------------------------------------------------ the model the messages feed
def test_messages_update_the_live_hall_and_say_what_changed() -> None:
    hall = LiveHall()
    assert hall.apply({"type": "welcome"}, 0.0) == set()
    changed = hall.apply({"type": "lobby", "you": "me", "period_s": 0.2,
                          "avatars": [avatar("a1", 1, 2)], "queue_board": BOARD_MESSAGE}, 0.0)
    assert changed == {PRESENCE, BOARD} and hall.entered
    assert hall.board[0].waiting == 2
    assert hall.apply({"type": "presence", "avatars": [avatar("a1", 3, 2)]}, 1.0) == {PRESENCE}
    assert hall.presence.spots(5.0)["a1"] == Spot(3.0, 2.0, 0.0)
    assert hall.apply({"type": "avatar_left", "id": "a1"}, 2.0) == {PRESENCE}
    assert hall.apply({"type": "avatar_left", "id": "a1"}, 2.0) == set()
    board = [dict(BOARD_MESSAGE[0], length=5)]
    assert hall.apply({"type": "queue_board", "services": board}, 3.0) == {BOARD}
    assert hall.board == [QueueRow("loan_signing", 5, 725.0, Text("Loan signing", "贷款面签"))]
    assert hall.apply({"type": "mall_items", "items": ITEMS}, 4.0) == {SHELF}
    assert hall.apply({"type": "points", "account": {"balance": 510, "tier": "standard"}},
                      4.0) == {SHELF}
    assert hall.apply({"type": "points_earned", "points": 10, "balance": 520}, 4.0) == {SHELF}
    assert hall.shelf.balance == 520
    assert hall.apply({"type": "error", "code": "bad_message", "message": "nope"}, 5.0) == \
        {STATUS}
    assert hall.problem == "nope"
    assert hall.apply({"type": "mall_items", "items": [{"id": "broken"}]}, 6.0) == {STATUS}
    assert len(hall.shelf.items) == 3  # a catalogue that cannot be read changes nothing
    assert {"lobby", "presence", "avatar_left", "queue_board", "redemption_placed",
            "link_down"} <= set(LiveHall.handled())


def test_the_outcome_of_a_redemption_reaches_the_shelf() -> None:
    hall = LiveHall()
    hall.apply({"type": "mall_items", "items": ITEMS}, 0.0)
    command = hall.shelf.confirm()
    assert command is not None
    hall.apply({"type": "redemption_placed", "item_id": "coffee_voucher", "order_id": "o1",
                "balance": 420, "replayed": True}, 1.0)
    assert hall.shelf.balance == 420 and not hall.shelf.busy
    assert hall.shelf.notice.endswith("(already placed)")
    hall.shelf.confirm()
    hall.apply({"type": "redemption_refused", "reason": "too few points: 80 > 0",
                "status": 422}, 2.0)
    assert hall.shelf.notice == "Not redeemed 未兑换: too few points: 80 > 0"
