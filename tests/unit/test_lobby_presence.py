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


def _hall() -> tuple[Lobby, list[tuple[str, dict[str, Any]]]]:
    sent: list[tuple[str, dict[str, Any]]] = []

    async def send(to: str, message: dict[str, Any]) -> None:
        sent.append((to, message))

    return Lobby(send, lambda: []), sent


def test_an_avatar_id_is_not_derived_from_the_username_and_is_new_each_visit() -> None:
    import hashlib

    lobby, sent = _hall()
    first = lobby.enter("ann", "Ann Lee", {"x": 0, "y": 0})["you"]
    # the unkeyed hash it once was: anyone could hash guessed usernames and compare
    assert first != "a" + hashlib.blake2s(b"ann", digest_size=6).hexdigest()
    assert "ann" not in first
    seen = lobby.enter("ben", "Ben Wu", {"x": 1, "y": 1})["avatars"]
    assert [a["id"] for a in seen] == [first]  # what others see is what the welcome said
    assert lobby.enter("ann", "Ann Lee", {"x": 2, "y": 0})["you"] == first  # same visit
    lobby.leave("ann")
    asyncio.run(lobby.tick())
    assert ("ben", {"type": "avatar_left", "id": first}) in sent
    again = lobby.enter("ann", "Ann Lee", {"x": 0, "y": 0})["you"]
    assert again != first  # a new visit, a new id: visits cannot be linked by it
    other, _ = _hall()
    assert other.enter("ann", "Ann Lee", {"x": 0, "y": 0})["you"] not in (first, again)


def test_avatars_of_another_node_keep_the_id_their_node_gave_them() -> None:
    here, sent = _hall()
    there, _ = _hall()
    shared: list[dict[str, Any]] = []

    async def share(changes: dict[str, Any]) -> None:
        shared.append(changes)

    there.share = share
    you = there.enter("cat", "Cat Ng", {"x": 3, "y": 4})["you"]
    asyncio.run(there.tick())
    here.from_peer("node-b", shared[-1])
    here.enter("ann", "Ann Lee", {"x": 0, "y": 0})
    asyncio.run(here.tick())
    presence = [m for who, m in sent if who == "ann" and m["type"] == "presence"]
    assert [a["id"] for a in presence[0]["avatars"]] == [you]
    there.leave("cat")
    asyncio.run(there.tick())
    here.from_peer("node-b", shared[-1])
    asyncio.run(here.tick())
    assert ("ann", {"type": "avatar_left", "id": you}) in sent


def test_one_who_leaves_and_comes_back_on_another_node_between_ticks_is_one_avatar() -> None:
    here, sent = _hall()
    there, _ = _hall()
    shared: list[dict[str, Any]] = []

    async def share(changes: dict[str, Any]) -> None:
        shared.append(changes)

    there.share = share
    first = there.enter("cat", "Cat Ng", {"x": 3, "y": 4})["you"]
    asyncio.run(there.tick())
    here.from_peer("node-b", shared[-1])
    here.enter("ann", "Ann Lee", {"x": 0, "y": 0})
    there.leave("cat")
    second = there.enter("cat", "Cat Ng", {"x": 3, "y": 4})["you"]
    asyncio.run(there.tick())
    here.from_peer("node-b", shared[-1])
    asyncio.run(here.tick())
    assert [a.id for a, _ in here.peers.values()] == [second]
    assert ("ann", {"type": "avatar_left", "id": first}) in sent
