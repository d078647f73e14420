"""The mall shelf as the customer uses it: the items, a selection, and redeeming one.

Pure, like a Sans-I/O protocol: feed it what the server said (``stock`` with the items,
``points`` with the balance, ``redeemed`` / ``refused`` / ``failed`` with a redemption's
outcome) and ask it for commands (``confirm`` returns the ``Redeem`` to send, or None) and
for the words to show (``menu``, ``price_list``, ``hud``). The network layer sends; the
Panda widgets only display.

One intended redemption has one ``Idempotency-Key``: a retry after a failure that may not
have reached the server reuses it, so the server redeems once however often the customer
presses Enter. A refusal (out of stock, too few points...) is the server's answer and ends
the attempt; its text is shown as it came.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from vbank.domain.flows import Text

TIERS = {"standard": Text("Standard", "普通"), "silver": Text("Silver", "银卡"),
         "gold": Text("Gold", "金卡"), "platinum": Text("Platinum", "白金")}
#: lines of the menu shown around the selection, so a long catalogue fits on the screen
MENU_ROWS = 8


@dataclass(frozen=True, slots=True)
class ShelfItem:
    """An item as this customer sees it: ``price`` is what one costs them."""

    id: str
    name: Text
    points: int  # the list price
    price: int
    stock: int
    limit: int | None  # per customer
    bought: int  # how many this customer holds, against the limit
    tier: str  # the lowest tier that may redeem it

    @classmethod
    def from_api(cls, raw: Mapping[str, Any]) -> ShelfItem:
        """From ``GET /api/v1/mall/items``; KeyError or TypeError if it is not an item."""
        name = raw["name"]
        points = int(raw["points"])
        price = raw.get("price")
        return cls(str(raw["id"]), Text(str(name["en"]), str(name["zh"])), points,
                   points if price is None else int(price), int(raw["stock"]),
                   raw.get("per_customer_limit"), int(raw.get("bought") or 0),
                   str(raw.get("tier") or "standard"))

    def label(self) -> str:
        """"Coffee voucher 咖啡券  80 pts · 500 left"."""
        cost = f"{self.price} pts" if self.price == self.points \
            else f"{self.price} pts (list {self.points})"
        left = f"{self.stock} left 剩" if self.stock > 0 else "sold out 售罄"
        gate = "" if self.tier == "standard" else f" · {tier_text(self.tier)}+"
        return f"{self.name.en} {self.name.zh}  {cost} · {left}{gate}"


@dataclass(frozen=True, slots=True)
class Redeem:
    """A command for the network: redeem one ``item_id`` with this ``Idempotency-Key``."""

    item_id: str
    key: str


def tier_text(tier: str) -> str:
    text = TIERS.get(tier)
    return f"{text.en} {text.zh}" if text is not None else tier


def new_key() -> str:
    return f"lobby-{uuid.uuid4().hex}"


class Shelf:
    """What the customer sees of the mall, and the redemption they are making."""

    def __init__(self, make_key: Callable[[], str] = new_key) -> None:
        self.items: list[ShelfItem] = []
        self.selected = 0  # an index into items
        self.balance: int | None = None  # None until the server told us
        self.tier: str | None = None
        self.notice = ""  # the outcome of the last redemption, shown under the menu
        #: a redemption sent and not settled; Enter again retries it with the same key
        self.pending: Redeem | None = None
        self.busy = False  # a redemption is on its way: Enter does nothing meanwhile
        self._make_key = make_key

    # ------------------------------------------------------------------ what the server says
    def stock(self, items: Iterable[Mapping[str, Any]]) -> None:
        """The catalogue (``GET /mall/items``); the selection stays on the same item."""
        chosen = self.chosen()
        self.items = [ShelfItem.from_api(raw) for raw in items]
        ids = [item.id for item in self.items]
        self.selected = ids.index(chosen.id) if chosen is not None and chosen.id in ids else 0

    def points(self, account: Mapping[str, Any]) -> None:
        """``GET /points``, or a ``points_earned`` / ``redeemed`` message (balance only)."""
        if isinstance(account.get("balance"), int):
            self.balance = int(account["balance"])
        if isinstance(account.get("tier"), str):
            self.tier = str(account["tier"])

    def redeemed(self, item_id: str, balance: int, replayed: bool = False) -> None:
        """The server placed the order (or had placed it: a retry it recognised)."""
        self.busy, self.pending = False, None
        self.balance = balance
        item = self.find(item_id)
        name = f"{item.name.en} {item.name.zh}" if item else item_id
        self.notice = f"Redeemed 已兑换: {name}" + (" (already placed)" if replayed else "")

    def refused(self, reason: str) -> None:
        """The server said no; the attempt is over and a new Enter is a new redemption."""
        self.busy, self.pending = False, None
        self.notice = f"Not redeemed 未兑换: {reason}"

    def failed(self, reason: str) -> None:
        """No answer we can trust (network, 503): Enter retries with the same key."""
        self.busy = False
        self.notice = f"{reason}; press Enter to try again 请重试"

    # ------------------------------------------------------------------ what the customer does
    def chosen(self) -> ShelfItem | None:
        return self.items[self.selected] if self.items else None

    def find(self, item_id: str) -> ShelfItem | None:
        return next((i for i in self.items if i.id == item_id), None)

    def select(self, step: int) -> None:
        """Move the selection ``step`` items down (negative: up), round the ends."""
        if not self.items or self.busy:
            return
        self.selected = (self.selected + step) % len(self.items)
        chosen = self.chosen()
        if self.pending is not None and chosen is not None and chosen.id != self.pending.item_id:
            self.pending = None  # the customer changed their mind: a new intent, a new key
            self.notice = ""

    def confirm(self) -> Redeem | None:
        """Redeem the chosen item: the command to send, or None when there is nothing to do."""
        chosen = self.chosen()
        if chosen is None or self.busy:
            return None
        if self.pending is None or self.pending.item_id != chosen.id:
            self.pending = Redeem(chosen.id, self._make_key())
        self.busy = True
        self.notice = f"Redeeming 兑换中: {chosen.name.en} {chosen.name.zh}…"
        return self.pending

    # ------------------------------------------------------------------ the words shown
    def hud(self) -> str:
        """The corner of the screen: balance and tier."""
        if self.balance is None:
            return ""
        tier = f" · {tier_text(self.tier)}" if self.tier else ""
        return f"{self.balance} points 积分{tier}"

    def price_list(self) -> str:
        """The list beside the shelf: one item a line, the customer's price and stock."""
        return "\n".join(item.label() for item in self.items)

    def menu(self) -> str:
        """The shelf's menu while the customer stands at it, the selection marked."""
        head = ["Points mall 积分商城" + (f"   {self.hud()}" if self.hud() else "")]
        if not self.items:
            return "\n".join([*head, "Loading the shelf… 加载中", "", "Esc: leave 离开"])
        first = min(max(self.selected - MENU_ROWS // 2, 0), max(len(self.items) - MENU_ROWS, 0))
        lines = [("> " if i == self.selected else "   ") + item.label()
                 for i, item in enumerate(self.items) if first <= i < first + MENU_ROWS]
        help_line = "Up/Down: choose 选择 · Enter/E: redeem 兑换 · Esc: leave 离开"
        return "\n".join([*head, "", *lines, "", help_line, self.notice])
