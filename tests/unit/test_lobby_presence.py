"""Presence rules: name tags, position checks, what each tick sends to whom."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from vbank.lobby import Lobby, LobbyError, name_tag, position


def test_name_tags_show_a_first_name_and_an_initial() -> None:
    assert name_tag("Alice Chen") == "Alice C."
    assert name_tag("Zhang Min") == "Zhang M."
    assert name_tag("王芳") == "王芳"
    assert name_tag("") == "Guest"


@pytest.mark.parametrize("message", [{"x": float("nan"), "y": 0}, {"x": 0, "y": 1e6},
                                     {"x": None, "y": 0}, {"x": 0, "y": 0, "heading": "n"}])
def test_positions_must_be_finite_numbers_inside_the_hall(message: dict[str, Any]) -> None:
    with pytest.raises(LobbyError):
        position({"type": "move", **message})


def test_a_tick_sends_others_what_moved_and_who_left_never_yourself() -> None:
    sent: list[tuple[str, dict[str, Any]]] = []

    async def send(to: str, message: dict[str, Any]) -> None:
        sent.append((to, message))

    board = [{"id": "loan_signing", "length": 0}]
    lobby = Lobby(send, lambda: board)
    lobby.enter("ann", "Ann Lee", {"x": 0, "y": 0})
    lobby.enter("ben", "Ben Wu", {"x": 1, "y": 1, "heading": 450})
    asyncio.run(lobby.tick())
    to_ann = [m for who, m in sent if who == "ann" and m["type"] == "presence"]
    assert [a["tag"] for a in to_ann[0]["avatars"]] == ["Ben W."]
    assert to_ann[0]["avatars"][0]["heading"] == 90.0
    sent.clear()
    asyncio.run(lobby.tick())
    assert sent == []  # nothing changed, nothing sent
    board[0] = {"id": "loan_signing", "length": 2}
    lobby.leave("ben")
    asyncio.run(lobby.tick())
    kinds = [m["type"] for who, m in sent if who == "ann"]
    assert kinds == ["avatar_left", "queue_board"] and all(who == "ann" for who, _ in sent)
