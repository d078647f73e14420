"""The points mall (积分商城) on the customer page, in real Chromium against ``vbank serve --demo``.

alice (500 points, standard tier) opens the mall from the lobby, redeems an umbrella and cancels
it, is refused a tea set she cannot afford, double-clicks her way to exactly one coffee voucher,
and sees her balance move when points are earned or spent outside the page. In the campaigns
she draws once in the lucky draw and sees her lobby visit ticked off the task chain; after a
real video call with tina she rates it, once, for 20 points. What the page shows is checked
against the API's own answers.

The page keeps the last GET /points on ``window.vbank.points``; cards, orders, draws, task
chains and the history carry ``data-testid`` and ``data-*`` attributes (``data-stock``,
``data-status``, ``data-prize``, ``data-done``).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from playwright.sync_api import Locator, Page, expect

from tests.e2e.browsers import ARTIFACTS, Person
from tests.e2e.test_browser_call import call_between, wait_state
from vbank.domain.mall import MALL_PATH
from vbank.serverproc import ServerProcess

pytestmark = pytest.mark.e2e

DEMO_ITEMS = ("coffee_voucher", "umbrella", "tea_set", "power_bank", "movie_tickets",
              "silver_coin", "flash_rice_cooker")
SCREENSHOT = "/tmp/mall.png"
CAMPAIGNS_SCREENSHOT = "/tmp/campaigns.png"
RATING_SCREENSHOT = "/tmp/rating.png"
OPENING_BALANCE = 500  # alice's, in the demo
# A task chain a test can finish (the demo's needs a risk assessment and a signed contract).
SHORT_CHAIN = {"id": "visit_and_rate", "points": 50, "steps": ["lobby_visit", "call_rated"],
               "name": {"en": "Visit, then rate a call", "zh": "到访后评价通话"}}


@pytest.fixture
def server_env(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    """The demo mall; parametrized (indirectly) with "short_chain", the demo mall plus
    SHORT_CHAIN."""
    if getattr(request, "param", None) != "short_chain":
        return {}
    mall = yaml.safe_load(MALL_PATH.read_text(encoding="utf-8"))
    mall["task_chains"].append(SHORT_CHAIN)
    path = tmp_path / "mall.yaml"
    path.write_text(yaml.safe_dump(mall, allow_unicode=True), encoding="utf-8")
    return {"VBANK_MALL": str(path)}


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

    def post(self, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        return httpx.post(self.url + path, json=body, headers=self.headers)


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


def shot(page: Page, path: str, name: str, notices: bool = True) -> None:
    """A full-page screenshot at `path`, and a copy among the test artifacts; `notices=False`
    leaves out the short notices (fixed in a corner, they cover what is behind them)."""
    style = None if notices else ".toasts { display: none !important; }"
    page.screenshot(path=path, full_page=True, style=style)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True, style=style)


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


def test_a_lucky_draw_shows_the_draw_the_api_recorded_and_charges_its_cost(
        person: Callable[..., Person], server: ServerProcess) -> None:
    page = person("alice", "/").page
    api = Api(server)
    open_mall(page)
    lottery = api.get("/campaigns")["lotteries"][0]
    lot, cost, per_day = lottery["id"], lottery["cost"], lottery["per_customer_per_day"]
    card = page.get_by_test_id(f"lottery-{lot}")
    expect(card).to_contain_text(f"{cost} points a draw")
    for prize in lottery["prizes"]:
        tile = page.get_by_test_id(f"prize-{lot}-{prize['id']}")
        expect(tile).to_contain_text(prize["name"]["en"])
        expect(tile).to_contain_text(f"{prize['chance_pct']:g}% chance")
        expect(tile).to_have_attribute("data-stock", str(prize["stock"]))
    draws_left = page.get_by_test_id(f"draws-left-{lot}")
    expect(draws_left).to_have_attribute("data-left", str(per_day))
    expect(page.get_by_test_id("my-draws").locator("li")).to_have_count(0)

    page.get_by_test_id(f"draw-{lot}").click()
    expect(page.get_by_test_id("confirm-text")).to_contain_text(
        f"One draw for {cost} points. You will have {OPENING_BALANCE - cost} points left")
    page.get_by_test_id("confirm-yes").click()
    expect(page.get_by_test_id("mall-confirm")).to_be_hidden()

    result = page.get_by_test_id("draw-result")
    expect(result).to_have_attribute("data-draw", re.compile(r".+"))
    [draw] = api.get("/lotteries/draws")
    expect(result).to_have_attribute("data-draw", draw["draw_id"])
    prize = draw["prize"]
    if prize is None:
        expect(result).to_contain_text("No prize this time")
    else:
        name = prize["name"]
        expect(result).to_contain_text(f"You won: {name['en']} · 恭喜您抽中：{name['zh']}")
        expect(page.get_by_test_id(f"prize-{lot}-{prize['id']}")).to_have_attribute(
            "data-stock", str(prize["stock"]))
    balance = OPENING_BALANCE - cost + (prize["points"] if prize else 0)
    assert api.balance() == balance
    expect(balance_shown(page)).to_have_text(str(balance))
    expect(result).to_contain_text(f"{balance} points after this draw")
    expect(draws_left).to_have_attribute("data-left", str(per_day - 1))
    expect(page.get_by_test_id("my-draws").locator("li")).to_have_count(1)
    expect(page.get_by_test_id(f"my-draw-{draw['draw_id']}")).to_have_attribute(
        "data-prize", prize["id"] if prize else "none")
    expect(page.get_by_test_id("points-history")).to_contain_text("Lucky draw · 幸运抽奖")
    page.get_by_test_id("campaigns").scroll_into_view_if_needed()
    shot(page, CAMPAIGNS_SCREENSHOT, "campaigns.png")


def test_the_task_chain_ticks_off_her_lobby_visit(
        person: Callable[..., Person], server: ServerProcess) -> None:
    page = person("alice", "/").page
    api = Api(server)
    open_mall(page)
    [chain] = api.get("/campaigns")["task_chains"]
    assert chain["steps"] == ["lobby_visit", "risk_assessed", "contract_signed"]
    card = page.get_by_test_id(f"chain-{chain['id']}")
    expect(card).to_have_attribute("data-done", "0")
    expect(card).to_contain_text(chain["name"]["en"])
    expect(card).to_contain_text(f"+{chain['points']} points")
    steps = card.locator("ol li")
    expect(steps).to_have_text(["1Visit the lobby · 到访大厅Next · 下一步",
                                re.compile("Complete a risk assessment · 完成风险测评"),
                                re.compile("Sign a contract · 签署合同")])

    assert api.post("/lobby/visits").json()["points_earned"] > 0

    expect(card).to_have_attribute("data-done", "1")  # heard live, not on a reload
    assert api.get("/campaigns")["task_chains"][0]["done"] == 1
    expect(page.get_by_test_id(f"chain-progress-{chain['id']}")).to_have_text(
        "1 of 3 done · 已完成 1/3")
    for step, state in zip(steps.all(), ("done", "next", "todo"), strict=True):
        expect(step).to_have_attribute("data-state", state)
    expect(card).to_have_attribute("data-completed", "false")


def test_customer_rates_her_finished_call_once_for_its_points(
        person: Callable[..., Person], server: ServerProcess) -> None:
    alice, tina, session_id = call_between(person, "alice", "tina")
    api = Api(server)
    page = alice.page
    expect(page.get_by_test_id("rating")).to_be_hidden()  # not while the call goes on
    tina.page.get_by_test_id("end").click()
    wait_state(page, "ended")
    expect(page.get_by_test_id("rating")).to_be_visible()
    send = page.get_by_test_id("rating-send")
    expect(send).to_be_disabled()  # no stars chosen yet

    # By keyboard: the stars are radio buttons, the arrow keys move between them.
    page.get_by_role("radio", name=re.compile(r"^3 stars")).focus()
    page.keyboard.press("Space")
    page.keyboard.press("ArrowRight")
    expect(page.get_by_role("radio", name="4 stars: Very good · 满意")).to_be_checked()
    expect(page.locator("#rating-stars label.lit")).to_have_count(4)
    page.get_by_test_id("rating-comment").fill("Clear and patient, thank you.")
    page.screenshot(path=RATING_SCREENSHOT.replace(".png", "-form.png"), full_page=True)
    send.click()

    done = page.get_by_test_id("rating-done")
    expect(done).to_have_text("Thank you · 感谢评价 (+20 points)")
    expect(page.get_by_test_id("toasts")).to_contain_text("+20 points for rating your call")
    assert api.balance() == OPENING_BALANCE + 20
    # Rated: no second rating is offered for this call, and the server agrees.
    expect(page.get_by_test_id("rating-form")).to_be_hidden()
    expect(page.get_by_role("radio")).to_have_count(0)
    again = api.post(f"/sessions/{session_id}/rating", {"stars": 1})
    assert again.status_code == 409, again.text
    shot(page, RATING_SCREENSHOT, "rating.png")
    page.get_by_test_id("back").click()
    expect(page.get_by_test_id("lobby-points")).to_have_text(
        f"{OPENING_BALANCE + 20} points · 积分")


def test_a_call_rated_elsewhere_first_shows_the_servers_refusal_and_no_second_rating(
        person: Callable[..., Person], server: ServerProcess) -> None:
    alice, _tina, session_id = call_between(person, "alice", "tina")
    api = Api(server)
    page = alice.page
    page.get_by_test_id("hangup").click()  # she ends the call herself this time
    wait_state(page, "ended")
    expect(page.get_by_test_id("rating-form")).to_be_visible()
    # Rated meanwhile in another window, with other stars.
    first = api.post(f"/sessions/{session_id}/rating", {"stars": 5})
    assert first.status_code == 201 and first.json()["points_earned"] == 20, first.text

    page.locator("#rating-stars label[for='star-2']").click()
    expect(page.get_by_test_id("star-2")).to_be_checked()
    page.get_by_test_id("rating-send").click()

    expect(page.get_by_test_id("rating-done")).to_have_text(
        "Not sent · 未提交: this call was rated already")
    expect(page.get_by_test_id("rating-form")).to_be_hidden()
    assert api.balance() == OPENING_BALANCE + 20  # the first rating's points, once


@pytest.mark.parametrize("server_env", ["short_chain"], indirect=True)
def test_rating_a_call_finishes_a_task_chain_which_shows_as_done_and_paid(
        person: Callable[..., Person], server: ServerProcess) -> None:
    alice, tina, _session_id = call_between(person, "alice", "tina")
    api = Api(server)
    page = alice.page
    visit = api.post("/lobby/visits").json()["points_earned"]
    tina.page.get_by_test_id("end").click()
    wait_state(page, "ended")
    page.locator("#rating-stars label[for='star-5']").click()
    page.get_by_test_id("rating-send").click()
    expect(page.get_by_test_id("rating-done")).to_have_text("Thank you · 感谢评价 (+20 points)")
    reward = SHORT_CHAIN["points"]
    expect(page.get_by_test_id("toasts")).to_contain_text(
        f"+{reward} points for completing a task chain")

    page.get_by_test_id("call-to-mall").click()
    card = page.get_by_test_id(f"chain-{SHORT_CHAIN['id']}")
    expect(card).to_have_attribute("data-completed", "true")
    expect(card).to_contain_text("Rate a call · 评价通话")
    expect(card).to_contain_text(f"Completed: {reward} points earned")
    expect(card.locator("ol li[data-state=done]")).to_have_count(2)
    expect(page.get_by_test_id("chain-getting_started")).to_have_attribute("data-done", "1")
    balance = OPENING_BALANCE + visit + 20 + reward
    assert api.balance() == balance
    expect(balance_shown(page)).to_have_text(str(balance))
    page.get_by_test_id("campaigns").scroll_into_view_if_needed()
    shot(page, "/tmp/chain-done.png", "chain-done.png", notices=False)
