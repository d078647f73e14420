"""What the customer is doing in the hall: a ``direct.fsm.FSM``.

Lobby → Queueing → InCall → Signing / Questionnaire / Mall → Lobby. The mall shelf is also
reachable straight from the lobby. Every ``enterX`` has an ``exitX`` that undoes it; what the
states show goes through a small ``Screen`` so that tests can watch it. A request the map
below does not allow raises ``direct.fsm.FSM.RequestDenied``.

The call's states follow the branch: ``wanted`` reads what the branch said (``LiveHall``)
and names the state the customer should be in, ``route`` the allowed way there (after a
reconnect the lobby goes through Queueing to InCall, as it would have live).
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Protocol

from direct.fsm.FSM import FSM

from vbank.domain.services import SERVICES

if TYPE_CHECKING:
    from client.lobby.live import LiveHall

TRANSITIONS: dict[str, list[str]] = {
    "Off": ["Lobby"],
    "Lobby": ["Queueing", "Mall"],
    "Queueing": ["InCall", "Lobby"],
    "InCall": ["Signing", "Questionnaire", "Mall", "Lobby"],
    "Signing": ["InCall", "Lobby"],
    "Questionnaire": ["InCall", "Lobby"],
    "Mall": ["InCall", "Lobby"],
}


#: the states of a customer in a call (Esc hangs up there)
IN_CALL = ("InCall", "Signing", "Questionnaire")


def wanted(current: str, hall: LiveHall) -> str | None:
    """The state the branch's news asks for, or None to stay."""
    call = hall.call
    if call.paired:
        flow = call.flow
        if call.flow_kind == "signature" and not flow.get("signature"):
            target = "Signing"
        elif call.flow_kind == "questionnaire" and call.question is not None:
            target = "Questionnaire"
        elif current == "Mall":
            return None  # browsing the shelf during the call is allowed
        else:
            target = "InCall"
    elif hall.queued:
        target = "Queueing"
    elif current in IN_CALL or (current == "Queueing" and (hall.join_refused or call.ended)):
        target = "Lobby"
    else:
        return None
    return None if target == current else target


def route(current: str, target: str) -> list[str]:
    """The shortest list of allowed requests from ``current`` to ``target`` (empty if there
    is none, or if already there)."""
    came: dict[str, str] = {current: current}
    todo = deque([current])
    while todo:
        state = todo.popleft()
        if state == target:
            path = []
            while state != current:
                path.append(state)
                state = came[state]
            return path[::-1]
        for nxt in TRANSITIONS.get(state, []):
            if nxt not in came:
                came[nxt] = state
                todo.append(nxt)
    return []


class Screen(Protocol):
    """Where the states put what the customer should see."""

    def show_status(self, text: str) -> None: ...

    def clear_status(self) -> None: ...

    def open_mall(self) -> None:
        """Show the shelf's menu (and fetch the items with live prices)."""

    def close_mall(self) -> None: ...


class LobbyStates(FSM):
    """The customer's state; ``service`` is the queue joined, kept until back in the lobby."""

    defaultTransitions = TRANSITIONS

    def __init__(self, screen: Screen) -> None:
        FSM.__init__(self, "LobbyStates")
        self.screen = screen
        self.service: str | None = None

    def enterLobby(self) -> None:
        self.service = None
        self.screen.show_status("Walk with arrows/WASD; E or space to use what is near")

    def exitLobby(self) -> None:
        self.screen.clear_status()

    def enterQueueing(self, service: str) -> None:
        if service not in SERVICES:
            raise ValueError(f"no service {service!r}")
        self.service = service
        name = SERVICES[service]
        self.screen.show_status(f"In the queue for {name.name_en} {name.name_zh}")

    def exitQueueing(self) -> None:
        self.screen.clear_status()

    def enterInCall(self, agent: str = "teller") -> None:
        self.screen.show_status(f"In a call with the {agent}")

    def exitInCall(self) -> None:
        self.screen.clear_status()

    def enterSigning(self) -> None:
        self.screen.show_status("Type your name to sign 请输入姓名签署")

    def exitSigning(self) -> None:
        self.screen.clear_status()

    def enterQuestionnaire(self) -> None:
        self.screen.show_status("Risk questionnaire 风险测评")

    def exitQuestionnaire(self) -> None:
        self.screen.clear_status()

    def enterMall(self) -> None:
        self.screen.show_status("Points mall 积分商城")
        self.screen.open_mall()

    def exitMall(self) -> None:
        self.screen.close_mall()
        self.screen.clear_status()
