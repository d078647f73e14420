"""A call taken in the 3D hall, end to end: the Panda3D client (offscreen, software renderer)
walks to the loan counter, joins its queue, a teller accepts, and the teller's camera —
aiortc from the teller over the branch to the client's own aiortc peer — is drawn on the
screen rising from that counter. The business in the call goes through the client's
widgets: a risk question answered by a click on its button.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from client.lobby.app import LobbyApp
from client.lobby.branch import BranchLink
from client.lobby.layout import load_layout
from client.lobby.net import NetLink
from client.lobby.walking import Pose
from client.lobby.world import pow2
from vbank.headless import Participant
from vbank.serverproc import ServerProcess, start_server

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"
PATIENCE_S = 20.0
#: the teller's camera: one flat colour (BGR), so the screen can be told from anything else
TELLER_BGR = (200, 40, 220)
TELLER_SIZE = (320, 240)


def flat_vp8(bgr: tuple[int, int, int], size: tuple[int, int], frames: int = 15) -> list[bytes]:
    """A loop of VP8 frames of one colour; the first a keyframe."""
    ctx = av.CodecContext.create("libvpx", "w")
    ctx.width, ctx.height, ctx.pix_fmt = size[0], size[1], "yuv420p"
    ctx.time_base = fractions.Fraction(1, 15)
    ctx.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    image = np.zeros((size[1], size[0], 3), np.uint8)
    image[:] = bgr
    out: list[bytes] = []
    for i in range(frames):
        frame = av.VideoFrame.from_ndarray(image, format="bgr24").reformat(format="yuv420p")
        frame.pts = i
        out += [bytes(p) for p in ctx.encode(frame)]
    return out + [bytes(p) for p in ctx.encode(None)]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = start_server(tmp_path_factory.mktemp("lobby-call") / "data")
    yield proc
    proc.stop()


@pytest.fixture
def app(server: ServerProcess, request: pytest.FixtureRequest) -> Iterator[LobbyApp]:
    """The 3D client of a demo customer (each test its own: a session left behind by one
    would wait out its grace period for the next)."""
    net = NetLink().start()
    user = request.node.get_closest_marker("customer").args[0]
    # ALSA's null device: a real microphone and speaker path that needs no sound card
    branch = BranchLink(net, server.url, user, user, microphone="alsa:null",
                        speaker="alsa:null")
    lobby = LobbyApp(load_layout(), offscreen=True, size=(640, 360), user=user, net=net,
                     branch=branch)
    yield lobby
    with contextlib.suppress(Exception):
        branch.leave_queue().result(5)
    branch.close()
    net.stop()
    lobby.destroy()


async def pump(app: LobbyApp, what: str, done: Callable[[], bool],
               timeout: float = PATIENCE_S) -> None:
    """Run the client's frames (its task manager) until ``done``, letting this loop run."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"never saw {what}: state {app.states.state}, problem "
                                 f"{app.live.problem!r}, call {app.live.call}")
        app.taskMgr.step()
        await asyncio.sleep(0.02)


def screen_pixels(app: LobbyApp) -> np.ndarray:
    """The screen texture's picture (BGR, rows from the bottom, padded)."""
    tex = app.world.screen_texture
    data = np.frombuffer(bytes(tex.getRamImageAs("BGR")), np.uint8)
    return data.reshape(tex.getYSize(), tex.getXSize(), 3)


@pytest.mark.customer("alice")
async def test_a_3d_customer_takes_a_call_at_the_counter_and_sees_the_teller(
        app: LobbyApp, server: ServerProcess) -> None:
    counter = app.world.layout.target("counter:loan_signing")
    x, y = counter.approach()
    app.place(Pose(x, y, 180.0 + counter.heading))  # facing the counter
    app.wait_for_hall()
    assert app.interact() is not None and app.states.state == "Queueing"
    await pump(app, "the queued message", lambda: app.live.queued == "loan_signing")

    teller = Participant(server.url, "tina")
    await teller.connect()
    try:
        await teller.send({"type": "status", "status": "available", "skills": ["loan_signing"]})
        await teller.send({"type": "accept"})
        paired = await teller.expect("paired")
        await pump(app, "the call", lambda: app.states.state == "InCall")
        assert app.world.call_at == "counter:loan_signing"
        await teller.start_media(paired["session_id"], flat_vp8(TELLER_BGR, TELLER_SIZE))

        await pump(app, "the teller's video on the screen", lambda: app.frames_shown >= 5)
        assert app.branch is not None and app.branch.call.frames.size == TELLER_SIZE
        tex = app.world.screen_texture
        assert (tex.getXSize(), tex.getYSize()) == (pow2(TELLER_SIZE[0]), pow2(TELLER_SIZE[1]))
        picture = screen_pixels(app)[:TELLER_SIZE[1], :TELLER_SIZE[0]].reshape(-1, 3)
        # VP8 and the colour conversions shift a flat colour by a few levels, no more
        assert np.abs(picture.mean(axis=0) - TELLER_BGR).max() < 12
        # the client's own camera and microphone reached the teller through the branch
        await asyncio.sleep(1.0)
        assert teller.peer is not None and teller.peer.reception.frames["video"] > 0
        assert teller.peer.reception.frames["audio"] > 0
        call = app.branch.call
        assert (call.microphone, call.speaker) == ("alsa:null", "alsa:null")
        assert call.echo is not None  # a microphone beside a speaker: its echo is cancelled
        assert len(call.audio) > 0  # the teller's voice (the headless peer's tone) arrived

        # the screen on the counter is in the picture, in the teller's colour
        ARTIFACTS.mkdir(exist_ok=True)
        shot = ARTIFACTS / "lobby_call_640x360.png"
        app.screenshot(shot)
        image = cv2.imread(str(shot))
        close = np.all(np.abs(image.astype(int) - TELLER_BGR) < 30, axis=2)
        assert close.sum() > 500, "the call screen is not visible from the counter"

        # the customer's network drops for a moment: the client comes back by itself, to
        # the same call, and the media (which did not depend on the socket) plays on
        async def cut() -> None:
            assert app.branch is not None and app.branch._ws is not None
            app.branch._ws.transport.abort()

        app.branch.net.submit(cut()).result(5)
        await pump(app, "the link lost", lambda: not app.live.entered)
        assert app.states.state == "InCall"
        await pump(app, "the link back", lambda: app.live.entered and not app.live.problem)
        assert app.states.state == "InCall" and app.world.call_at == "counter:loan_signing"
        shown = app.frames_shown
        await pump(app, "more of the teller's video", lambda: app.frames_shown > shown + 5)
        assert app.branch.call.session_id == paired["session_id"]

        # the teller hangs up: the screen goes away, the customer is back in the lobby
        await teller.send({"type": "end", "outcome": "completed"})
        await pump(app, "the lobby again", lambda: app.states.state == "Lobby")
        assert app.world.call_at is None
        await pump(app, "the media closed", lambda: app.branch is not None
                   and app.branch.call.pc is None)
    finally:
        await teller.close()


@pytest.mark.customer("carol")
async def test_a_risk_question_is_answered_by_clicking_its_button(
        app: LobbyApp, server: ServerProcess) -> None:
    booth = app.world.layout.target("risk_booth")
    app.place(Pose(*booth.approach(), 0.0))
    app.wait_for_hall()
    app.interact()  # the booth joins the risk assessment queue
    await pump(app, "the queued message", lambda: app.live.queued == "risk_assessment")
    teller = Participant(server.url, "tina")
    await teller.connect()
    try:
        await teller.send({"type": "status", "status": "available",
                           "skills": ["risk_assessment"]})
        await teller.send({"type": "accept"})
        paired = await teller.expect("paired")
        await teller.start_media(paired["session_id"], flat_vp8(TELLER_BGR, TELLER_SIZE))
        await teller.send({"type": "start_flow", "flow": "risk_assessment"})
        await pump(app, "the questionnaire", lambda: app.states.state == "Questionnaire"
                   and bool(app.call_screen.buttons))
        first = app.live.call.question
        assert first is not None and set(app.call_screen.buttons) == {o for o, _ in first.options}
        button = app.call_screen.buttons[first.options[0][0]]
        button.commandFunc(None)  # what a mouse click on it does
        await pump(app, "the next question", lambda: app.live.call.question is not None
                   and app.live.call.question.id != first.id)
        assert app.live.call.flow.get("answers", {}).get(first.id) == first.options[0][0]
    finally:
        await teller.close()
