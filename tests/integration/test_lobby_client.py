"""The 3D client's network side against a real ``vbank serve --demo``, headless.

Each client is what the app runs minus the window: a ``NetLink`` thread, the ``BranchLink``
on it, and the ``LiveHall`` model its messages feed (the app draws from that model). Two
customers see each other walk, the queue board follows a join, and a redemption from the
shelf model changes the balance and stock it shows exactly as the API says.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import httpx
import pytest

from client.lobby.board import columns
from client.lobby.branch import BranchLink
from client.lobby.live import LiveHall
from client.lobby.net import NetLink
from client.lobby.presence import Spot
from client.lobby.shelf import Shelf, ShelfItem
from vbank.serverproc import ServerProcess, start_server

ROOT = Path(__file__).resolve().parents[2]
#: how long to wait for something the server will do; a generous bound, never a measurement
PATIENCE_S = 15.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data: Path = tmp_path_factory.mktemp("lobby-client") / "data"
    proc = start_server(data)
    yield proc
    proc.stop()


def choose(shelf: Shelf, item_id: str) -> ShelfItem:
    """Press down until ``item_id`` is chosen."""
    for _ in range(len(shelf.items)):
        chosen = shelf.chosen()
        if chosen is not None and chosen.id == item_id:
            return chosen
        shelf.select(1)
    raise AssertionError(f"no {item_id} on the shelf")


class HeadlessClient:
    """A 3D customer without a window."""

    def __init__(self, server: ServerProcess, username: str,
                 language: str | None = None) -> None:
        self.net = NetLink().start()
        self.link = BranchLink(self.net, server.url, username, username, language=language)
        self.hall = LiveHall()
        #: every server message, as the network thread got it
        self.messages: list[dict[str, Any]] = []
        self.link.listeners.append(self.messages.append)

    def pump(self) -> None:
        self.net.drain(lambda event, message: self.hall.apply(message, time.monotonic()))

    def until(self, what: str, condition: Callable[[], bool]) -> None:
        deadline = time.monotonic() + PATIENCE_S
        while True:
            self.pump()
            if condition():
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"never saw {what}; problem: {self.hall.problem!r}")
            time.sleep(0.02)

    def enter(self, x: float, y: float, heading: float) -> None:
        self.link.enter(x, y, heading).result(PATIENCE_S)
        self.until("the lobby message", lambda: self.hall.entered)

    def close(self) -> None:
        self.link.close()
        self.net.stop()


@pytest.fixture
def clients(server: ServerProcess) -> Iterator[Callable[[str], HeadlessClient]]:
    made: list[HeadlessClient] = []

    def make(username: str, language: str | None = None) -> HeadlessClient:
        made.append(HeadlessClient(server, username, language))
        return made[-1]

    yield make
    for client in made:
        client.close()


def api(server: ServerProcess, username: str, path: str) -> Any:
    token = server.login(username)
    r = httpx.get(f"{server.url}{path}", headers={"Authorization": f"Bearer {token}"})
    r.raise_for_status()
    return r.json()


def test_a_customer_sees_another_arrive_walk_and_stop_where_they_stopped(
        clients: Callable[[str], HeadlessClient]) -> None:
    alice, bob = clients("alice"), clients("bob")
    alice.enter(0.0, -8.0, 0.0)
    bob.enter(2.0, -8.0, 90.0)
    [(alice_id, track)] = bob.hall.presence.tracks.items()
    assert track.tag == "Alice C." and track.end == Spot(0.0, -8.0, 0.0)
    alice.until("bob arriving", lambda: any(t.tag == "Bob L."
                                            for t in alice.hall.presence.tracks.values()))

    for i in range(1, 11):  # alice walks up the aisle and turns to face west, then stops
        alice.link.walk(0.15 * i, -8.0 + 0.475 * i, (350.0 + 10 * i) % 360)
        time.sleep(0.05)
    bob.until("alice ending where she stopped", lambda: bob.hall.presence.tracks[alice_id].end
              == Spot(1.5, -3.25, 90.0))
    later = time.monotonic() + bob.hall.presence.period_s
    assert bob.hall.presence.spots(later)[alice_id] == Spot(1.5, -3.25, 90.0)

    sent = alice.link.moves_sent
    assert sent >= 1
    time.sleep(4 * alice.link.move_period_s)  # standing still sends nothing
    assert alice.link.moves_sent == sent

    alice.link.close()
    bob.until("alice leaving", lambda: alice_id not in bob.hall.presence.tracks)


def test_the_board_shows_a_customer_who_joins_a_queue(
        clients: Callable[..., HeadlessClient]) -> None:
    alice, bob = clients("alice"), clients("bob", "zh")  # bob asked for Chinese (--lang zh)
    alice.enter(0.0, -8.0, 0.0)
    bob.enter(2.0, -8.0, 90.0)
    loan = [r for r in bob.hall.board if r.service == "loan_signing"]
    assert loan and loan[0].waiting == 0

    bob.link.join("loan_signing").result(PATIENCE_S)

    def bob_on_the_board(client: HeadlessClient) -> bool:
        return any(r.service == "loan_signing" and r.waiting == 1 for r in client.hall.board)

    bob.until("bob in the loan signing queue", lambda: bob_on_the_board(bob))
    alice.until("bob in the loan signing queue", lambda: bob_on_the_board(alice))
    bob.until("queued", lambda: bob.hall.queued == "loan_signing")
    assert [m["language"] for m in bob.messages if m.get("type") == "queued"] == ["zh"]
    names, waiting, _ = columns(alice.hall.board)
    row = names.splitlines().index("Loan signing 贷款面签")
    assert waiting.splitlines()[row] == "1 waiting 人"

    bob.link.leave_queue().result(PATIENCE_S)
    alice.until("the queue empty again", lambda: not bob_on_the_board(alice))


def test_redeeming_from_the_shelf_updates_balance_and_stock_as_the_api_says(
        server: ServerProcess, clients: Callable[[str], HeadlessClient]) -> None:
    alice = clients("alice")
    alice.enter(0.0, -8.0, 0.0)
    shelf = alice.hall.shelf
    alice.link.fetch_mall()
    alice.until("the shelf", lambda: bool(shelf.items) and shelf.balance is not None)
    balance = api(server, "alice", "/api/v1/points")["balance"]
    assert shelf.balance == balance and shelf.tier == "standard"
    stock = choose(shelf, "coffee_voucher").stock

    command = shelf.confirm()
    assert command is not None and command.item_id == "coffee_voucher"
    alice.link.redeem(command)
    alice.until("the shelf restocked after the redemption", lambda: not shelf.busy
                and choose(shelf, "coffee_voucher").stock == stock - 1)
    assert shelf.notice == "Redeemed 已兑换: Coffee voucher 咖啡券"
    items = {i["id"]: i for i in api(server, "alice", "/api/v1/mall/items")}
    assert items["coffee_voucher"]["stock"] == stock - 1
    alice.until("the balance", lambda: shelf.balance == balance - 80)
    assert api(server, "alice", "/api/v1/points")["balance"] == balance - 80

    # as if the answer had been lost and the customer pressed Enter again: the shelf
    # retries the same command, with the same key, and the server redeems only once
    shelf.busy = True
    alice.link.redeem(command)
    alice.until("the replayed answer", lambda: not shelf.busy)
    assert shelf.notice.endswith("(already placed)")
    assert api(server, "alice", "/api/v1/points")["balance"] == balance - 80

    choose(shelf, "silver_coin")
    refused = shelf.confirm()
    assert refused is not None and refused.key != command.key
    alice.link.redeem(refused)
    alice.until("the refusal", lambda: not shelf.busy)
    assert shelf.notice.startswith("Not redeemed 未兑换: ") and "gold" in shelf.notice
    assert api(server, "alice", "/api/v1/points")["balance"] == balance - 80


def render(server: ServerProcess, shot: Path, password: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    return subprocess.run([sys.executable, "-m", "vbank", "lobby", "--offscreen", "--screenshot",
                           str(shot), "--size", "640x360", "--server", server.url,
                           "--user", "alice", "--password", password],
                          capture_output=True, text=True, env=env, timeout=120, cwd=ROOT)


def test_the_offscreen_screenshot_shows_the_live_hall(
        server: ServerProcess, clients: Callable[[str], HeadlessClient],
        tmp_path: Path) -> None:
    empty, live = tmp_path / "empty.png", tmp_path / "live.png"
    done = render(server, empty, "alice")
    assert done.returncode == 0, done.stderr
    clients("bob").enter(-2.0, -3.0, 200.0)  # in the aisle, in front of alice's camera
    done = render(server, live, "alice")
    assert done.returncode == 0, done.stderr
    without, with_bob = cv2.imread(str(empty)), cv2.imread(str(live))
    assert without.shape == with_bob.shape == (360, 640, 3)
    # bob stands left of the aisle: the picture changes there and not at the far right
    changed = (abs(without.astype(int) - with_bob.astype(int)).sum(axis=2) > 60)
    assert changed[:, 150:320].mean() > 0.01
    assert changed[200:, 560:].mean() < 0.001


def test_a_wrong_password_is_named_and_the_command_fails(server: ServerProcess,
                                                         tmp_path: Path) -> None:
    done = render(server, tmp_path / "no.png", "not-alice")
    assert done.returncode == 2
    assert "vbank lobby: cannot sign in as alice: wrong username or password" in done.stderr
    assert not (tmp_path / "no.png").exists()


def test_a_lost_link_comes_back_by_itself_to_the_same_place_in_the_queue(
        clients: Callable[[str], HeadlessClient]) -> None:
    alice = clients("alice")
    alice.enter(0.0, -8.0, 0.0)
    seen: list[dict[str, Any]] = []
    alice.link.listeners.append(seen.append)  # every server message, on the network thread
    alice.link.join("general_enquiry").result(PATIENCE_S)
    alice.until("the queued message", lambda: alice.hall.queued == "general_enquiry")
    ticket = next(m for m in seen if m["type"] == "queued")["session_id"]

    async def cut() -> None:  # the network drops: no close frame, no goodbye
        assert alice.link._ws is not None
        alice.link._ws.transport.abort()

    alice.net.submit(cut()).result(PATIENCE_S)
    alice.until("the link lost", lambda: not alice.hall.entered)
    assert "reconnecting" in alice.hall.problem and alice.hall.queued == "general_enquiry"
    alice.until("the link back", lambda: alice.hall.entered and not alice.hall.problem)
    welcome = next(m for m in seen if m["type"] == "welcome")
    assert welcome["session"]["state"] == "queued"
    assert welcome["session"]["session_id"] == ticket
    assert alice.hall.queued == "general_enquiry"  # the same place, not a new ticket
    alice.link.leave_queue().result(PATIENCE_S)
