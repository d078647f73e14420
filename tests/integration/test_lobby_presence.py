"""The 3D lobby's presence over the real signaling WebSocket: customers see each other walk
(by name tag, not username), see who left, and watch the queue board change; bad positions
are refused and nothing else changes; only customers walk the hall; the day's first visit
earns points."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websockets

from vbank.serverproc import ServerProcess, start_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data: Path = tmp_path_factory.mktemp("lobby") / "data"
    proc = start_server(data)
    yield proc
    proc.stop()


class Client:
    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.messages: list[dict[str, Any]] = []

    async def send(self, **message: Any) -> None:
        await self.ws.send(json.dumps(message))

    async def wait(self, kind: str, where: Any = lambda m: True,
                   timeout: float = 5) -> dict[str, Any]:
        """The first message of ``kind`` (seen before or arriving) that ``where`` accepts."""
        async def find() -> dict[str, Any]:
            index = 0
            while True:
                while index < len(self.messages):
                    message = self.messages[index]
                    index += 1
                    if message.get("type") == kind and where(message):
                        return message
                self.messages.append(json.loads(await self.ws.recv()))
        try:
            return await asyncio.wait_for(find(), timeout)
        except TimeoutError:
            raise AssertionError(f"no {kind} in {self.messages}") from None


async def connect(server: ServerProcess, name: str) -> Client:
    token = await asyncio.to_thread(server.login, name)
    ws = await websockets.connect(server.url.replace("http", "ws") + "/ws")
    client = Client(ws)
    await client.send(type="auth", token=token)
    await client.wait("welcome")
    return client


def test_customers_see_each_other_walk_leave_and_the_queue_board_change(
        server: ServerProcess) -> None:
    async def run() -> None:
        alice, bob = await connect(server, "alice"), await connect(server, "bob")
        await alice.send(type="lobby_enter", x=0, y=-8, heading=0)
        hello = await alice.wait("lobby")
        assert hello["avatars"] == [] and hello["period_s"] == pytest.approx(0.2)
        board = {s["id"]: s for s in hello["queue_board"]}
        assert set(board) == {"loan_signing", "risk_assessment", "account_opening",
                              "general_enquiry"}
        assert board["loan_signing"]["length"] == 0
        earned = await alice.wait("points_earned")  # the day's first visit
        assert (earned["event"], earned["points"]) == ("lobby_visit", 10)

        await bob.send(type="lobby_enter", x=2, y=-8, heading=90)
        seen = await bob.wait("lobby")
        [other] = seen["avatars"]
        assert other["tag"] == "Alice C." and "alice" not in json.dumps(other)
        alice_id = other["id"]

        await alice.send(type="move", x=1.5, y=-3.25, heading=-90)
        moved = await bob.wait("presence", lambda m: any(
            a["id"] == alice_id and a["y"] == -3.25 for a in m["avatars"]))
        [a] = [a for a in moved["avatars"] if a["id"] == alice_id]
        assert (a["x"], a["heading"]) == (1.5, 270.0)
        arrived = await alice.wait("presence", lambda m: any(
            a["tag"] == "Bob L." for a in m["avatars"]))
        assert arrived["avatars"][0]["x"] == 2

        await bob.send(type="join", service="loan_signing")
        await bob.wait("queued")
        update = await alice.wait("queue_board", lambda m: any(
            s["id"] == "loan_signing" and s["length"] == 1 for s in m["services"]))
        assert all(s["estimated_wait_s"] >= 0 for s in update["services"])
        await bob.send(type="leave")

        await alice.ws.close()
        gone = await bob.wait("avatar_left")
        assert gone["id"] == alice_id
        await bob.ws.close()

    asyncio.run(run())


def test_bad_positions_and_wrong_roles_are_refused(server: ServerProcess) -> None:
    async def run() -> None:
        carol, tina = await connect(server, "carol"), await connect(server, "tina")
        await carol.send(type="move", x=0, y=0)
        early = await carol.wait("error")
        assert early["code"] == "bad_message" and "lobby_enter" in early["message"]
        await carol.send(type="lobby_enter", x=0, y=0)
        await carol.wait("lobby")
        for bad in ({"x": "1", "y": 0}, {"x": 1e9, "y": 0}, {"x": 0},
                    {"x": 0, "y": 0, "heading": True}):
            carol.messages.clear()
            await carol.send(type="move", **bad)
            refused = await carol.wait("error")
            assert refused["code"] == "bad_message", bad
        await carol.send(type="ping")
        await carol.wait("pong")  # the connection stays open
        await tina.send(type="lobby_enter", x=0, y=0)
        wrong = await tina.wait("error")
        assert wrong["code"] == "wrong_role"
        await carol.ws.close()
        await tina.ws.close()

    asyncio.run(run())
