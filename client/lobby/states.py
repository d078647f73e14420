"""What the customer is doing in the hall: a ``direct.fsm.FSM``.

Lobby → Queueing → InCall → Signing / Questionnaire / Mall → Lobby. The risk booth and the
mall shelf are also reachable straight from the lobby. Every ``enterX`` has an ``exitX`` that
undoes it; what the states show goes through a small ``Screen`` so that tests can watch it.
A request the map below does not allow raises ``direct.fsm.FSM.RequestDenied``.
"""

from __future__ import annotations

from typing import Protocol

from direct.fsm.FSM import FSM

from vbank.domain.services import SERVICES

TRANSITIONS: dict[str, list[str]] = {
    "Off": ["Lobby"],
    "Lobby": ["Queueing", "Questionnaire", "Mall"],
    "Queueing": ["InCall", "Lobby"],
    "InCall": ["Signing", "Questionnaire", "Mall", "Lobby"],
    "Signing": ["InCall", "Lobby"],
    "Questionnaire": ["InCall", "Lobby"],
    "Mall": ["InCall", "Lobby"],
}


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
