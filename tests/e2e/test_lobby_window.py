"""``vbank lobby`` in a window, as a person runs it: an X server (Xvfb) with Mesa's OpenGL,
key presses sent to the window by xdotool, and nothing else.

The person at the keys looks where they are going; here a second customer in the hall
(the 3D client's network side, headless) plays the eyes: the test reads where the window's
customer stands from the presence the branch sends, and presses the arrows to steer to the
loan counter, then E. A teller accepts and their camera plays on the counter's screen in
the window (F12 saves what the window shows); Esc hangs up, a second Esc quits.
"""

from __future__ import annotations

import asyncio
import math
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from client.lobby.branch import BranchLink
from client.lobby.layout import load_layout, nearest_target
from client.lobby.live import LiveHall
from client.lobby.net import NetLink
from client.lobby.presence import Spot
from client.lobby.walking import TURN_SPEED, WALK_SPEED, heading_to, plan
from tests.integration.test_lobby_call import TELLER_BGR, TELLER_SIZE, flat_vp8
from vbank.headless import Participant
from vbank.serverproc import ServerProcess, start_server

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"
SIZE = (960, 600)
PATIENCE_S = 30.0


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:  # `make test` installs it (Makefile DEB_PACKAGES)
        pytest.fail(f"{name} is not installed: run `make system`")
    return path


@pytest.fixture(scope="module")
def display() -> Iterator[str]:
    """A virtual screen; Xvfb picks a free display number and tells it on a pipe."""
    read, write = os.pipe()
    xvfb = subprocess.Popen([tool("Xvfb"), "-displayfd", str(write), "-screen", "0",
                             f"{SIZE[0]}x{SIZE[1]}x24", "-nolisten", "tcp"],
                            pass_fds=(write,), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    os.close(write)
    with os.fdopen(read) as pipe:
        number = pipe.readline().strip()
    assert number, "Xvfb did not start"
    yield f":{number}"
    xvfb.terminate()
    xvfb.wait(10)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = start_server(tmp_path_factory.mktemp("lobby-window") / "data")
    yield proc
    proc.stop()


class Window:
    """The ``vbank lobby`` process and the keys of its window."""

    def __init__(self, display: str, server: ServerProcess, shot: Path) -> None:
        self.env = {**os.environ, "DISPLAY": display}
        self.shot = shot
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "vbank", "lobby", "--server", server.url, "--user", "alice",
             "--password", "alice", "--size", f"{SIZE[0]}x{SIZE[1]}", "--screenshot",
             str(shot), "--microphone", "none", "--speaker", "none"],
            env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        found = self.xdotool("search", "--sync", "--name", "Virtual Bank", timeout=60)
        self.id = found.split()[0]
        self.xdotool("windowfocus", "--sync", self.id)

    def xdotool(self, *args: str, timeout: float = 10) -> str:
        return subprocess.run([tool("xdotool"), *args], env=self.env, capture_output=True,
                              text=True, timeout=timeout, check=True).stdout

    def hold(self, key: str, seconds: float) -> None:
        self.xdotool("keydown", key)
        time.sleep(seconds)
        self.xdotool("keyup", key)

    def press(self, key: str) -> None:
        self.xdotool("key", key)

    def saved(self) -> np.ndarray:
        """F12: the window saves what it shows."""
        self.shot.unlink(missing_ok=True)
        self.press("F12")
        deadline = time.monotonic() + 10
        while not self.shot.exists() or self.shot.stat().st_size == 0:
            assert time.monotonic() < deadline, "F12 saved no screenshot"
            time.sleep(0.1)
        time.sleep(0.2)  # the file is complete
        image = cv2.imread(str(self.shot))
        assert image is not None and image.shape[:2] == (SIZE[1], SIZE[0])
        return image

    def close(self) -> str:
        if self.proc.poll() is None:
            self.proc.kill()
        out, _ = self.proc.communicate(timeout=10)
        return out


class Eyes:
    """Another customer in the hall, seeing where the window's customer stands."""

    def __init__(self, server: ServerProcess) -> None:
        self.net = NetLink().start()
        self.link = BranchLink(self.net, server.url, "bob", "bob", microphone="none",
                               speaker="none")
        self.hall = LiveHall()
        self.link.enter(0.0, -8.5, 0.0).result(PATIENCE_S)

    def until(self, what: str, condition: Callable[[], bool]) -> None:
        deadline = time.monotonic() + PATIENCE_S
        while True:
            self.net.drain(lambda _, message: self.hall.apply(message, time.monotonic()))
            if condition():
                return
            assert time.monotonic() < deadline, f"never saw {what}"
            time.sleep(0.05)

    def alice(self) -> Spot:
        """Where the window's customer stands, once their moves have settled."""
        self.until("alice in the hall", lambda: any(
            t.tag == "Alice C." for t in self.hall.presence.tracks.values()))
        time.sleep(0.6)  # the client sends at 5 Hz, the branch forwards at 5 Hz
        self.until("the latest presence", lambda: True)
        return next(t.end for t in self.hall.presence.tracks.values() if t.tag == "Alice C.")

    def close(self) -> None:
        self.link.close()
        self.net.stop()


def steer_to(window: Window, eyes: Eyes, target_id: str) -> Spot:
    """Arrows until the customer stands where ``target_id`` is used: turn towards the next
    waypoint, walk part of the way, look again."""
    layout = load_layout()
    for _ in range(40):
        spot = eyes.alice()
        near = nearest_target(layout, spot.x, spot.y)
        if near is not None and near.id == target_id:
            return spot
        wx, wy = plan(layout, (spot.x, spot.y), layout.target(target_id).approach())[0]
        turn = (heading_to(spot.x, spot.y, wx, wy) - spot.heading + 180) % 360 - 180
        if abs(turn) > 8:
            window.hold("Left" if turn > 0 else "Right", abs(turn) / TURN_SPEED)
            continue
        window.hold("Up", min(math.hypot(wx - spot.x, wy - spot.y), 3.0) / WALK_SPEED)
    raise AssertionError(f"never reached {target_id}; at {eyes.alice()}")


async def test_a_person_walks_to_the_loan_counter_takes_a_call_and_leaves(
        display: str, server: ServerProcess) -> None:
    # the teller's media runs on this loop: what blocks (keys, screenshots, looking) runs
    # in threads
    ARTIFACTS.mkdir(exist_ok=True)
    window = await asyncio.to_thread(Window, display, server, ARTIFACTS / "lobby_window.png")
    eyes = await asyncio.to_thread(Eyes, server)
    teller = Participant(server.url, "tina")
    try:
        first = await asyncio.to_thread(window.saved)
        assert first.std() > 20, "the window shows nothing"
        await asyncio.to_thread(steer_to, window, eyes, "counter:loan_signing")
        await asyncio.to_thread(window.press, "e")
        await asyncio.to_thread(eyes.until, "alice in the loan queue", lambda: any(
            r.service == "loan_signing" and r.waiting == 1 for r in eyes.hall.board))

        await teller.connect()
        await teller.send({"type": "status", "status": "available", "skills": ["loan_signing"]})
        await teller.send({"type": "accept"})
        paired = await teller.expect("paired")
        assert paired["peer"]["username"] == "alice"
        await teller.start_media(paired["session_id"], flat_vp8(TELLER_BGR, TELLER_SIZE))
        deadline = time.monotonic() + PATIENCE_S
        while True:  # the teller's camera plays on the counter's screen, in the window
            image = await asyncio.to_thread(window.saved)
            if np.all(np.abs(image.astype(int) - TELLER_BGR) < 30, axis=2).sum() > 2000:
                break
            assert time.monotonic() < deadline, "the teller never appeared in the window"
            await asyncio.sleep(0.5)
        assert teller.peer is not None and teller.peer.reception.frames["video"] > 0

        await asyncio.to_thread(window.press, "Escape")  # hang up
        await teller.expect("ended")
        await asyncio.to_thread(window.press, "Escape")  # and leave
        assert await asyncio.to_thread(window.proc.wait, 15) == 0
    finally:
        output = window.close()
        eyes.close()
        await teller.close()
        (ARTIFACTS / "lobby_window.log").write_text(output)
