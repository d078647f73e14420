"""The points mall (积分商城) on the customer page, in real Chromium against ``vbank serve --demo``.

alice (500 points, standard tier) opens the mall from the lobby, redeems an umbrella and cancels
it, is refused a tea set she cannot afford, double-clicks her way to exactly one coffee voucher,
and sees her balance move when points are earned or spent outside the page. What the page
shows is checked against the API's own answers.

The page keeps the last GET /points on ``window.vbank.points``; cards, orders and the history
carry ``data-testid`` and ``data-*`` attributes (``data-stock``, ``data-status``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from playwright.sync_api import Locator, Page, expect

from tests.e2e.browsers import ARTIFACTS, Person
from vbank.serverproc import ServerProcess

pytestmark = pytest.mark.e2e

DEMO_ITEMS = ("coffee_voucher", "umbrella", "tea_set", "power_bank", "movie_tickets",
              "silver_coin", "flash_rice_cooker")
SCREENSHOT = "/tmp/mall.png"


# ---- the API, to check what the page shows ---------------------------------------------------

class Api:
    """alice's view of the points API, beside her browser."""

    def __init__(self, server: ServerProcess, user: str = "alice") -> None:
        self.url = f"{server.url}/api/v1"
        self.headers = {"Authorization": f"Bearer {server.login(user)}"}

    def get(self, path: str) -> Any:
        r = httpx.get(self.url + path, headers=self.headers)
        r.raise_for_status()
        return r.json()

    def balance(self) -> int:
        return int(self.get("/points")["balance"])

    def stock(self, item_id: str) -> int:
        return int(next(i for i in self.get("/mall/items") if i["id"] == item_id)["stock"])

    def orders(self, item_id: str | None = None) -> list[dict[str, Any]]:
        return [o for o in self.get("/mall/redemptions") if item_id in (None, o["item_id"])]

    def redeem(self, item_id: str) -> dict[str, Any]:
        r = httpx.post(self.url + "/mall/redemptions", json={"item_id": item_id, "quantity": 1},
                       headers={**self.headers, "Idempotency-Key": str(uuid.uuid4())})
        assert r.status_code == 201, r.text
        body: dict[str, Any] = r.json()
        return body


# ---- what alice does -------------------------------------------------------------------------

def open_mall(page: Page) -> None:
    page.get_by_test_id("open-mall").click()
    expect(page.locator("#view-mall")).to_be_visible()
    expect(page.get_by_test_id("catalogue").locator("li.item-card")).not_to_have_count(0)


def balance_shown(page: Page) -> Locator:
    return page.get_by_test_id("points-balance")


def ask_to_redeem(page: Page, item_id: str) -> None:
    page.get_by_test_id(f"redeem-{item_id}").click()
    expect(page.get_by_test_id("mall-confirm")).to_be_visible()


def placed_order(page: Page, item_id: str) -> str:
    """The id of the one order of `item_id` in "My orders"."""
    order = page.get_by_test_id("orders").locator(f"li[data-item='{item_id}']")
    expect(order).to_have_count(1)
    testid = order.get_attribute("data-testid")
    assert testid is not None and testid.startswith("order-")
    return testid.removeprefix("order-")


# ---- the tests -------------------------------------------------------------------------------

def test_customer_redeems_an_item_then_cancels_it_for_her_points_back(
        person: Callable[..., Person], server: ServerProcess) -> None:
    page = person("alice", "/").page
    api = Api(server)
    expect(page.get_by_test_id("lobby-points")).to_have_text("500 points · 积分")
    open_mall(page)

    expect(balance_shown(page)).to_have_text("500")
    expect(page.get_by_test_id("points-tier")).to_contain_text("Standard")
    expect(page.get_by_test_id("next-tier")).to_contain_text("500 more growth value to Silver")
    items = {i["id"]: i for i in api.get("/mall/items")}
    assert set(DEMO_ITEMS) <= set(items)
    expect(page.get_by_test_id("catalogue").locator("li.item-card")).to_have_count(len(items))
    for item_id in DEMO_ITEMS:
        card = page.get_by_test_id(f"item-{item_id}")
        expect(card).to_contain_text(items[item_id]["name"]["en"])
        expect(card).to_contain_text(items[item_id]["name"]["zh"])
        expect(card.locator("img")).to_have_attribute("src", items[item_id]["image_url"])
    expect(page.get_by_test_id("item-silver_coin")).to_contain_text("For Gold customers")
    expect(page.get_by_test_id("item-flash_rice_cooker")).to_contain_text("Flash sale")
    # the mall as alice first sees it, for a person to look at
    page.get_by_test_id("item-umbrella").scroll_into_view_if_needed()
    page.screenshot(path=SCREENSHOT, full_page=True)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "mall.png"), full_page=True)

    price, stock = items["umbrella"]["price"], items["umbrella"]["stock"]
    stock_shown = page.get_by_test_id("stock-umbrella")
    expect(stock_shown).to_have_attribute("data-stock", str(stock))
    ask_to_redeem(page, "umbrella")
    expect(page.get_by_test_id("confirm-text")).to_contain_text(
        f"1 × Folding umbrella · 折叠雨伞 for {price} points")
    page.get_by_test_id("confirm-yes").click()

    expect(page.get_by_test_id("mall-confirm")).to_be_hidden()
    expect(balance_shown(page)).to_have_text(str(500 - price))
    expect(stock_shown).to_have_attribute("data-stock", str(stock - 1))
    expect(page.get_by_test_id("toasts")).to_contain_text("Folding umbrella · 折叠雨伞 ×1 redeemed")
    order_id = placed_order(page, "umbrella")
    expect(page.get_by_test_id(f"order-{order_id}")).to_have_attribute("data-status", "placed")
    expect(page.get_by_test_id("points-history")).to_contain_text(
        "Redeemed · 兑换: Folding umbrella · 折叠雨伞 ×1")
    assert api.balance() == 500 - price
    assert api.stock("umbrella") == stock - 1
    assert [(o["id"], o["status"]) for o in api.orders()] == [(order_id, "placed")]

    page.get_by_test_id(f"cancel-{order_id}").click()
    expect(page.get_by_test_id("confirm-text")).to_contain_text(f"your {price} points come back")
    page.get_by_test_id("confirm-yes").click()

    expect(balance_shown(page)).to_have_text("500")
    expect(stock_shown).to_have_attribute("data-stock", str(stock))
    expect(page.get_by_test_id(f"order-{order_id}")).to_have_attribute("data-status", "cancelled")
    expect(page.get_by_test_id(f"cancel-{order_id}")).to_have_count(0)
    expect(page.get_by_test_id("points-history")).to_contain_text(
        "Refund · 退还: Folding umbrella · 折叠雨伞 ×1")
    assert api.balance() == 500
    assert api.stock("umbrella") == stock
    assert [(o["id"], o["status"]) for o in api.orders()] == [(order_id, "cancelled")]


def test_redeeming_more_than_she_can_afford_shows_the_refusal_and_changes_nothing(
        person: Callable[..., Person], server: ServerProcess) -> None:
    page = person("alice", "/").page
    api = Api(server)
    open_mall(page)
    expect(page.get_by_test_id("item-tea_set")).to_contain_text("You need 700 more points")

    ask_to_redeem(page, "tea_set")
    page.get_by_test_id("confirm-yes").click()

    error = page.get_by_test_id("confirm-error")
    expect(error).to_contain_text("Not redeemed")
    expect(error).to_contain_text("too few points: 1200 points wanted, 500 available")
    expect(page.get_by_test_id("confirm-yes")).to_be_hidden()
    page.get_by_test_id("confirm-no").click()
    expect(page.get_by_test_id("mall-confirm")).to_be_hidden()

    expect(balance_shown(page)).to_have_text("500")
    expect(page.get_by_test_id("stock-tea_set")).to_have_attribute("data-stock", "20")
    expect(page.get_by_test_id("orders").locator("li")).to_have_count(0)
    expect(page.locator("#orders-none")).to_be_visible()
    assert api.balance() == 500
    assert api.stock("tea_set") == 20
    assert api.orders() == []
    assert [t["kind"] for t in api.get("/points/transactions")] == ["earn"]  # the opening


def test_double_clicks_on_redeem_and_confirm_place_one_order(
        person: Callable[..., Person], server: ServerProcess) -> None:
    page = person("alice", "/").page
    api = Api(server)
    open_mall(page)

    page.get_by_test_id("redeem-coffee_voucher").dblclick()
    expect(page.get_by_test_id("mall-confirm")).to_be_visible()
    # the second click of the double-click, landing in the dialog, confirms nothing
    page.wait_for_timeout(500)
    assert api.orders() == []
    page.get_by_test_id("confirm-yes").dblclick()

    expect(balance_shown(page)).to_have_text("420")
    placed_order(page, "coffee_voucher")
    page.wait_for_timeout(1000)  # time for a second request, were one on its way
    assert len(api.orders("coffee_voucher")) == 1
    assert api.balance() == 420
    expect(page.get_by_test_id("orders").locator("li")).to_have_count(1)
    expect(page.get_by_test_id("limit-coffee_voucher")).to_contain_text("you have 1")


def test_points_earned_and_spent_elsewhere_show_up_live(
        person: Callable[..., Person], server: ServerProcess) -> None:
    page = person("alice", "/").page
    api = Api(server)
    expect(page.get_by_test_id("lobby-points")).to_have_text("500 points · 积分")

    # The 3D lobby's first visit of the day earns points: the page hears it while in the lobby.
    r = httpx.post(f"{api.url}/lobby/visits", headers=api.headers)
    assert r.status_code == 200, r.text
    earned = r.json()["points_earned"]
    assert earned > 0
    expect(page.get_by_test_id("toasts")).to_contain_text(
        f"+{earned} points for visiting the branch")
    expect(page.get_by_test_id("lobby-points")).to_have_text(f"{500 + earned} points · 积分")

    open_mall(page)
    expect(balance_shown(page)).to_have_text(str(500 + earned))
    stock = api.stock("umbrella")
    spent = api.redeem("umbrella")["points_spent"]  # from another window

    expect(balance_shown(page)).to_have_text(str(500 + earned - spent))
    expect(page.get_by_test_id("toasts")).to_contain_text("redeemed in another window")
    expect(page.get_by_test_id("stock-umbrella")).to_have_attribute("data-stock",
                                                                       str(stock - 1))
    placed_order(page, "umbrella")
