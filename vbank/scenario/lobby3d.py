"""A scenario customer in the 3D hall: the Panda3D client itself, offscreen, driven by steps.

``client: lobby3d`` makes the actor a ``LobbyApp`` on the software renderer with its own
network thread, ``BranchLink`` and call media — the code a person runs with ``vbank lobby``
— and the steps press its keys: ``walk_to`` walks the customer there (a route planned round
the furniture at walking speed, as a click on it does, so the others in the hall see them
go), ``interact``
is the E key, a questionnaire answer is a click on the option's button, a signature the name
typed into the box, ``show_id`` the ID number typed into it (the client's camera then holds
the card up), a redemption the shelf's arrows and Enter. The app's frames run on the
runner's loop (the main thread, where Panda wants them) a few dozen times a second.

What the actor heard and saw is read where the client keeps it: the messages its link
received, the audio its call decoded, and ``video_frames`` counts the frames drawn on the
hall's screen texture. Panda allows one ShowBase per process: a scenario has at most one
lobby3d actor.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from vbank.scenario.actors import LOUD_DBFS, REPLY_WAIT_S, Actor, StepFailed, Turn
from vbank.speech.audio import Pcm, rms_dbfs
from vbank.speech.tracks import SpeechTrack

#: frames a second the offscreen client draws while a scenario runs
FPS = 20
#: the offscreen picture's size
SIZE = (640, 360)
#: how long a walk may take before the customer is stuck
WALK_LIMIT_S = 30.0
#: how long the shelf has to answer a redemption
REDEEM_S = 15.0


class LobbyActor(Actor):
    """A customer using the 3D client."""

    app: Any = None  # client.lobby.app.LobbyApp, imported when the first one is made

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pump: asyncio.Task[None] | None = None
        self._net: Any = None
        self.branch: Any = None

    # ------------------------------------------------------------ connection
    async def connect(self) -> None:
        if self.app is None:
            self._start_app()
        assert self.app is not None
        self.app.live.entered = False
        try:
            await asyncio.wrap_future(self.app.enter_hall())
        except Exception as exc:
            raise StepFailed(f"{self.key} cannot enter the hall: {exc}") from exc
        await self.until("the hall's welcome", lambda: self.app.live.entered, 20)

    def _start_app(self) -> None:
        from client.lobby.app import LobbyApp
        from client.lobby.branch import BranchLink
        from client.lobby.layout import load_layout
        from client.lobby.net import NetLink

        self._net = NetLink().start()
        self.branch = BranchLink(self._net, self.server, self.username, self.password,
                                 voice=self._new_voice, microphone="none", speaker="none",
                                 language=self.language)
        self.branch.listeners.append(self._on_message)  # on the network thread
        try:
            self.app = LobbyApp(load_layout(), offscreen=True, size=SIZE,
                                user=str(self.spec.get("name") or self.key), net=self._net,
                                branch=self.branch)
        except Exception:
            self._net.stop()
            raise
        self._pump = asyncio.ensure_future(self._frames())

    def _new_voice(self) -> SpeechTrack:
        """The track the client's call sends as the customer's voice (a new one per call)."""
        self.voice.stop()
        self.voice = SpeechTrack()
        return self.voice

    async def _frames(self) -> None:
        while True:
            self.app.taskMgr.step()
            await asyncio.sleep(1 / FPS)

    async def until(self, what: str, done: Any, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                raise StepFailed(f"no {what} within {timeout:g} s ({self.app.live.problem})")
            await asyncio.sleep(0.05)

    @property
    def connected(self) -> bool:
        return self.app is not None and bool(self.app.live.entered)

    async def drop(self) -> None:
        if self.branch is not None:
            await asyncio.wrap_future(self.branch.drop())

    async def send(self, message: dict[str, Any]) -> None:
        """A message from a step. The business a person does with the client's widgets goes
        through them: an answer is a click on its button, a signature the typed name."""
        if self.app is None:
            raise StepFailed(f"{self.key} is not in the hall")
        kind = message.get("type")
        if kind == "answer":
            await self._click(str(message.get("question")), str(message.get("option")))
        elif kind == "sign":
            await self._type("sign", str(message.get("name")))
        elif kind == "show_id":  # the number typed into the box, the card up to the camera
            await self._type("id", str(message.get("id_number")))
        else:
            await asyncio.wrap_future(self.branch.send(message))

    async def _click(self, question: str, option: str) -> None:
        await self.until(f"the button for question {question}", lambda: (
            self.app.live.call.question is not None and self.app.live.call.question.id ==
            question and option in self.app.call_screen.buttons), 10)
        self.app.call_screen.buttons[option].commandFunc(None)  # what a mouse click does
        self._check_problem("answer")

    async def _type(self, box: str, text: str) -> None:
        """Type ``text`` into the call's box once it asks for ``box``, and press Enter."""
        screen = self.app.call_screen
        # the box asks for a name in the signing step; the contract may still be on its way
        # to the screen (messages reach the hall once a frame)
        def ready() -> bool:
            document = self.app.live.call.document or {}
            return bool(screen.asking == box and (box != "sign" or document.get("sha256")))

        await self.until(f"the box asking for {'a name' if box == 'sign' else 'an ID number'}",
                         ready, 10)
        screen.entry.enterText(text)
        screen.submit(screen.entry.get())
        self._check_problem("sign" if box == "sign" else "show_id")

    def _check_problem(self, what: str) -> None:
        if self.app.live.problem:
            raise StepFailed(f"{what}: {self.app.live.problem}")

    def _open_media(self, session_id: str) -> None:
        """The client opens its own call media (``BranchLink``)."""

    # ----------------------------------------------------------------- media
    async def media_ready(self, timeout: float = 15) -> Any:
        await self.until("connected call media", lambda: self.branch.call.connected, timeout)
        return self.branch.call

    @property
    def received_audio(self) -> list[tuple[float, Pcm]]:
        if self.branch is None:
            return []
        return [(at, pcm) for at, pcm in list(self.branch.call.audio) if at >= self.heard_from]

    @property
    def video_frames(self) -> int:
        """Frames of the call's video drawn on the hall's screen."""
        return int(self.app.frames_shown) if self.app is not None else 0

    async def _measure_reply(self, turn: Turn) -> None:
        deadline = turn.spoken_end + REPLY_WAIT_S
        while time.monotonic() < deadline:
            for at, pcm in list(self.branch.call.audio):
                if at >= turn.spoken_end and rms_dbfs(pcm) > LOUD_DBFS:
                    turn.latency_s = at - turn.spoken_end
                    return
            await asyncio.sleep(0.02)

    # ------------------------------------------------------------------ the hall
    async def walk_to(self, target_id: str) -> None:
        """Walk there as a click on it does: round the furniture, at walking speed."""
        from client.lobby import LobbyError
        from client.lobby.layout import nearest_target

        layout = self.app.world.layout
        if target_id not in layout.targets:
            raise StepFailed(f"walk_to: no {target_id!r} in the hall; one of "
                             f"{', '.join(sorted(layout.targets))}")
        try:
            self.app.go_to(target_id)
        except LobbyError as exc:
            raise StepFailed(f"walk_to: {exc}") from exc
        await self.until(f"arrival at {target_id}", lambda: not self.app.route, WALK_LIMIT_S)
        p, target = self.app.pose, layout.targets[target_id]
        near = nearest_target(layout, p.x, p.y)
        if target.interact and (near is None or near.id != target_id):
            raise StepFailed(f"walk_to {target_id}: ended at ({p.x:.1f}, {p.y:.1f}), nearest "
                             f"{near.id if near else 'nothing'}")

    async def interact(self) -> None:
        """Press E: a counter or the kiosk or the risk booth joins its queue, the shelf
        opens the mall."""
        mark = len(self.log)
        target = self.app.interact()
        if target is None:
            p = self.app.pose
            raise StepFailed(f"interact: nothing within reach at ({p.x:.1f}, {p.y:.1f})")
        if self.app.states.state == "Queueing":
            reply = await self.wait_for(("queued", "error"), mark, 10)
            if reply["type"] == "error":
                raise StepFailed(f"interact at {target.id}: the queue refused: "
                                 f"{reply.get('message')}")
        elif self.app.states.state == "Mall":
            await self.until("the mall's items on the shelf",
                             lambda: bool(self.app.live.shelf.items), 10)

    async def redeem(self, item_id: str, quantity: int) -> tuple[bool, str]:
        """Choose ``item_id`` on the shelf with the arrow keys and press E, as often as
        ``quantity``; returns (placed, the shelf's words). The customer must be at the shelf
        (``interact`` there first)."""
        if self.app.states.state != "Mall":
            raise StepFailed("redeem: a 3D customer redeems at the mall shelf (walk_to "
                             "mall_shelf, then interact)")
        shelf = self.app.live.shelf
        notice = ""
        for _ in range(quantity):
            for _ in range(len(shelf.items) + 1):
                chosen = shelf.chosen()
                if chosen is not None and chosen.id == item_id:
                    break
                self.app.press("back", True)  # the down arrow
            else:
                raise StepFailed(f"redeem: no {item_id} on the shelf "
                                 f"({', '.join(i.id for i in shelf.items)})")
            deadline = time.monotonic() + REDEEM_S
            while True:
                self.app.interact()  # E: redeem what is chosen
                await self.until("the shelf's answer", lambda: not shelf.busy, REDEEM_S)
                notice = shelf.notice
                if shelf.pending is None or time.monotonic() > deadline:
                    break  # placed or refused; a failure keeps its key and is tried again
                await asyncio.sleep(0.5)
            if not notice.startswith("Redeemed"):
                return False, notice
        return True, notice

    # ------------------------------------------------------------ reporting
    def seen(self) -> str:
        where = ""
        if self.app is not None:
            p = self.app.pose
            where = f"state={self.app.states.state}; at=({p.x:.1f}, {p.y:.1f}); " \
                    f"frames_shown={self.app.frames_shown}; "
        return where + super().seen()

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        self.voice.stop()
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
        if self.branch is not None:
            await asyncio.to_thread(self.branch.close)
        if self._net is not None:
            self._net.stop()
        if self.app is not None:
            self.app.destroy()
            self.app = None
