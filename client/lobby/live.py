"""What the branch says is happening in the hall, as one plain object the app draws from.

Pure: ``LiveHall.apply(message, now)`` takes a message — one of the server's (``lobby``,
``presence``, ``avatar_left``, ``queue_board``, ``points_earned``, ``redeemed``, ``queued``,
``error``, and the call's ``paired``, ``caption``, ``flow``, ``document``, ``question``,
``requeued``, ``ended``…) or one the client's own link reports (``mall_items``, ``points``,
``redemption_placed``, ``redemption_refused``, ``redemption_failed``, ``link_down``,
``call_media``) — and says which parts of the picture changed. The app redraws those parts;
tests read the same object without a window.
"""

from __future__ import annotations

import logging
from typing import Any

from client.lobby.board import QueueRow, rows
from client.lobby.incall import CallView
from client.lobby.presence import Presence
from client.lobby.shelf import Shelf

log = logging.getLogger(__name__)

#: the parts of the picture a message can change
PRESENCE, BOARD, SHELF, STATUS, CALL = "presence", "board", "shelf", "status", "call"
Message = dict[str, Any]
#: error codes that refuse a ``join``: the customer is not in the queue after them
QUEUE_ERRORS = frozenset({"unknown_service"})


class LiveHall:
    """Other customers, the queue board, the shelf and the customer's points."""

    def __init__(self) -> None:
        self.presence = Presence()
        self.board: list[QueueRow] = []  # empty until the server's first board
        self.shelf = Shelf()
        self.entered = False  # the server welcomed us into the hall (``lobby``)
        self.you: str | None = None  # our avatar's public id
        self.queued: str | None = None  # the service whose queue we are in
        self.problem = ""  # the last thing that went wrong, for the status line
        self.call = CallView()
        self.name = ""  # the customer's name as the branch knows it (from ``welcome``)
        self.join_refused = False  # the branch refused the last join (the app goes back)

    def apply(self, message: Message, now: float) -> set[str]:
        """Take in one message at ``now`` (seconds); returns the parts that changed."""
        kind = message.get("type")
        handler = getattr(self, f"_on_{kind}", None) if isinstance(kind, str) else None
        if handler is None:
            return set()
        changed: set[str] = handler(message, now)
        return changed

    @classmethod
    def handled(cls) -> list[str]:
        """The message types ``apply`` understands."""
        return sorted(name[4:] for name in dir(cls) if name.startswith("_on_"))

    # ------------------------------------------------------------------ presence and board
    def _on_lobby(self, m: Message, now: float) -> set[str]:
        self.entered = True
        self.you = m.get("you") if isinstance(m.get("you"), str) else None
        period = m.get("period_s")
        self.presence.welcome(m.get("avatars") or [], now, you=self.you,
                              period_s=float(period) if isinstance(period, int | float) else None)
        self.board = rows(m.get("queue_board") or [])
        return {PRESENCE, BOARD}

    def _on_presence(self, m: Message, now: float) -> set[str]:
        self.presence.update(m.get("avatars") or [], now)
        return {PRESENCE}

    def _on_avatar_left(self, m: Message, now: float) -> set[str]:
        return {PRESENCE} if self.presence.left(str(m.get("id"))) else set()

    def _on_queue_board(self, m: Message, now: float) -> set[str]:
        self.board = rows(m.get("services") or [])
        return {BOARD}

    def _on_queued(self, m: Message, now: float) -> set[str]:
        service = m.get("service")
        self.queued = service if isinstance(service, str) else self.queued
        self.join_refused = False
        return {STATUS, CALL}

    def _on_error(self, m: Message, now: float) -> set[str]:
        self.problem = str(m.get("message") or m.get("code") or "error")
        if m.get("code") in QUEUE_ERRORS and not self.call.paired:
            self.queued = None  # the join was refused: the customer is not waiting
            self.join_refused = True
            return {STATUS, CALL}
        return {STATUS}

    # ------------------------------------------------------------------ the call
    def _on_welcome(self, m: Message, now: float) -> set[str]:
        user = m.get("user")
        if isinstance(user, dict) and isinstance(user.get("display_name"), str):
            self.name = user["display_name"]
        session = m.get("session")
        if not isinstance(session, dict):
            if self.call.paired or self.queued:  # back after a lost link, but nothing waited
                self.call.end("lost")
                self.queued = None
                return {CALL}
            return set()
        if session.get("state") == "in_call":
            self.queued = str(session.get("service") or self.queued or "")
            self.call.resumed(session)
        elif session.get("state") == "queued":
            self.queued = str(session.get("service") or "")
        return {CALL}

    def _on_paired(self, m: Message, now: float) -> set[str]:
        self.call.paired_with(m)
        if isinstance(m.get("service"), str):
            self.queued = m["service"]
        return {CALL}

    def _on_requeued(self, m: Message, now: float) -> set[str]:
        self.call.unpaired()
        return {CALL}

    def _on_handed_over(self, m: Message, now: float) -> set[str]:
        self.call.unpaired()
        return {CALL}

    def _on_ended(self, m: Message, now: float) -> set[str]:
        self.call.end(str(m.get("outcome") or "ended"))
        self.queued = None
        return {CALL}

    def _on_left(self, m: Message, now: float) -> set[str]:
        self.call.end("left")
        self.queued = None
        return {CALL}

    def _on_caption(self, m: Message, now: float) -> set[str]:
        self.call.caption(str(m.get("speaker") or ""), str(m.get("text") or ""))
        return {CALL}

    def _on_flow(self, m: Message, now: float) -> set[str]:
        flow = m.get("flow")
        if isinstance(flow, dict):
            self.call.flow_state(flow)
        return {CALL}

    def _on_document(self, m: Message, now: float) -> set[str]:
        self.call.pushed(m)
        return {CALL}

    def _on_question(self, m: Message, now: float) -> set[str]:
        self.call.asked(m)
        return {CALL}

    def _on_call_media(self, m: Message, now: float) -> set[str]:
        self.call.media = str(m.get("state") or "")
        if m.get("state") == "failed":
            self.problem = f"the call's media failed: {m.get('reason')}"
        return {CALL, STATUS}

    def _on_link_down(self, m: Message, now: float) -> set[str]:
        self.entered = False
        self.problem = str(m.get("reason") or "lost the branch")
        if m.get("reconnecting"):
            # the branch keeps the place in the queue or the call for a while: so does the
            # screen, until the ``welcome`` that follows the reconnect says otherwise
            self.problem += " — reconnecting… 正在重新连接"
            return {STATUS}
        if self.call.paired or self.queued:
            self.call.end("link_down")
            self.queued = None
            return {STATUS, CALL}
        return {STATUS}

    def _on_link_up(self, m: Message, now: float) -> set[str]:
        self.problem = ""
        return {STATUS}

    # ------------------------------------------------------------------ points and the shelf
    def _on_points(self, m: Message, now: float) -> set[str]:
        self.shelf.points(m.get("account") or {})
        return {SHELF}

    def _on_points_earned(self, m: Message, now: float) -> set[str]:
        self.shelf.points(m)
        return {SHELF}

    def _on_redeemed(self, m: Message, now: float) -> set[str]:
        self.shelf.points(m)  # from this window or another of the customer's
        return {SHELF}

    def _on_mall_items(self, m: Message, now: float) -> set[str]:
        try:
            self.shelf.stock(m.get("items") or [])
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("the mall's items could not be read: %r", exc)
            self.problem = "the mall's items could not be read"
            return {STATUS}
        return {SHELF}

    def _on_redemption_placed(self, m: Message, now: float) -> set[str]:
        self.shelf.redeemed(str(m.get("item_id")), int(m.get("balance") or 0),
                            bool(m.get("replayed")))
        return {SHELF}

    def _on_redemption_refused(self, m: Message, now: float) -> set[str]:
        self.shelf.refused(str(m.get("reason")))
        return {SHELF}

    def _on_redemption_failed(self, m: Message, now: float) -> set[str]:
        self.shelf.failed(str(m.get("reason")))
        return {SHELF}
