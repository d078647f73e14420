"""``vbank lobby``: the one ShowBase of the 3D client, in a window or offscreen.

Offscreen it uses the software renderer's ``TinyOffscreenGraphicsPipe`` (no X server, no
GPU), renders a few frames, saves a screenshot and exits; with ``--user`` it first walks
into the live hall and waits for the server's ``lobby`` message, so the picture shows the
queue board and the other customers as they are. In a window the customer walks with the
arrows or WASD, uses what is near with E or space, and clicks on things; at the mall shelf
the arrows choose an item and E/Enter redeems it; Esc steps back (in a call: hangs up).

A counter (or the kiosk, or the risk booth) joins its queue; when the branch pairs the
customer, the call's video plays on a screen rising from that counter, its captions run
along the bottom, and the business steps come up as the branch reaches them: a box to type
one's name in to sign, a button per option of a risk question.

Server messages arrive as ``net-<type>`` events; ``LiveHall`` takes them in and the app
redraws what changed (the crowd every frame, as it glides).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from direct.gui.OnscreenText import OnscreenText
from direct.showbase.ShowBase import ShowBase
from panda3d.core import (
    ClockObject,
    Filename,
    GraphicsPipeSelection,
    Point3,
    TextNode,
    TypeHandle,
    TypeRegistry,
    loadPrcFileData,
)

from client.lobby import LobbyError
from client.lobby.avatar import build_avatar
from client.lobby.branch import BranchLink
from client.lobby.call_screen import CallScreen
from client.lobby.crowd import Crowd
from client.lobby.incall import CallProblem
from client.lobby.labels import label_font
from client.lobby.layout import Layout, Target, load_layout, nearest_target
from client.lobby.live import BOARD, CALL, PRESENCE, SHELF, STATUS, LiveHall
from client.lobby.mall_screen import MallScreen
from client.lobby.net import NetLink
from client.lobby.states import IN_CALL, LobbyStates, route, wanted
from client.lobby.walking import WALK_SPEED, Pose, heading_to, plan, spawn_pose, step
from client.lobby.world import World

log = logging.getLogger(__name__)

SKY = (0.70, 0.80, 0.90, 1)
#: the third-person camera: metres behind the player, metres up, and where it looks
CAMERA_BACK, CAMERA_UP, LOOK_AHEAD = 6.0, 3.4, 3.0
#: in a call the camera looks over the right shoulder at the screen: metres right, back, up
CALL_CAMERA = (0.9, 2.6, 1.85)
#: horizontal field of view, degrees
FOV = 68
#: frames rendered before an offscreen screenshot, so that fonts and textures settle
SETTLE_FRAMES = 3
#: seconds ``--offscreen --user`` waits for the server to let the customer into the hall
ENTER_TIMEOUT_S = 20.0
#: the queue joined at a target that is not a counter
SERVICE_OF = {"kiosk": "general_enquiry", "risk_booth": "risk_assessment"}
KEYS = {"arrow_up": "forward", "w": "forward", "arrow_down": "back", "s": "back",
        "arrow_left": "left", "a": "left", "arrow_right": "right", "d": "right"}


def configure(size: tuple[int, int], offscreen: bool) -> None:
    """Panda's settings for this process; call before the ShowBase is made."""
    lines = [f"win-size {size[0]} {size[1]}", "window-title Virtual Bank 虚拟银行",
             "audio-library-name null", "sync-video false", "model-cache-dir",
             "notify-level-device fatal", "notify-level-x11display fatal",
             "notify-level-egldisplay fatal", "notify-level-display error"]
    if offscreen:
        # only the software renderer: it needs no X server and no GPU, and draws the same
        # pixels on every machine (golden-image tests rely on that)
        lines += ["window-type none", "load-display p3tinydisplay", "aux-display p3tinydisplay"]
    loadPrcFileData("vbank-lobby", "\n".join(lines))


class LobbyApp(ShowBase):
    """The hall, the player, the camera, the keys and the customer's state machine."""

    def __init__(self, layout: Layout, *, offscreen: bool, size: tuple[int, int] = (1280, 720),
                 user: str | None = None, net: NetLink | None = None,
                 branch: BranchLink | None = None) -> None:
        configure(size, offscreen)
        ShowBase.__init__(self, windowType="none" if offscreen else None)
        if offscreen:
            selection = GraphicsPipeSelection.getGlobalPtr()
            selection.loadAuxModules()
            pipe_type = TypeRegistry.ptr().findType("TinyOffscreenGraphicsPipe")
            if pipe_type == TypeHandle.none():
                raise LobbyError("panda3d has no TinyOffscreenGraphicsPipe (p3tinydisplay)")
            self.pipe = selection.makePipe(pipe_type)
            if self.pipe is None or not self.openDefaultWindow(type="offscreen"):
                raise LobbyError("cannot open an offscreen buffer with p3tinydisplay")
        self.setBackgroundColor(*SKY)
        self.disableMouse()
        self.camLens.setFov(FOV)
        self.camLens.setNearFar(0.3, 200)
        self.world = World(layout)
        self.world.root.reparentTo(self.render)
        self.pose = spawn_pose(layout)
        self.user_tag = user or "You 您"
        self.player = build_avatar("player", (0.85, 0.38, 0.16, 1), skin=1, tag=self.user_tag)
        self.player.reparentTo(self.render)
        self.keys = dict.fromkeys(("forward", "back", "left", "right"), False)
        # the corners' anchors keep the texts on screen whatever the window's shape
        self.status = OnscreenText(text="", pos=(0.058, -0.1), scale=0.05, align=TextNode.ALeft,
                                   fg=(1, 1, 1, 1), bg=(0.05, 0.1, 0.2, 0.6),
                                   font=label_font(), mayChange=True, parent=self.a2dTopLeft)
        self.prompt = OnscreenText(text="", pos=(0, -0.9), scale=0.055, fg=(1, 1, 1, 1),
                                   bg=(0.05, 0.1, 0.2, 0.6), font=label_font(), mayChange=True)
        #: balance and tier (and what went wrong with the link), top right
        self.hud = OnscreenText(text="", pos=(-0.058, -0.1), scale=0.05, align=TextNode.ARight,
                                fg=(1, 1, 1, 1), bg=(0.05, 0.1, 0.2, 0.6), font=label_font(),
                                mayChange=True, parent=self.a2dTopRight)
        self.live = LiveHall()  # what the server says is going on in the hall
        self.crowd = Crowd(self.render)
        self.mall_screen = MallScreen(self.a2dLeftCenter)
        self.call_screen = CallScreen(self.a2dBottomCenter, self.sign, self.answer,
                                      self.show_id)
        #: the target the customer used to join the queue: its screen plays the call
        self.call_place: str | None = None
        self.frames_shown = 0  # call video frames drawn on the screen texture
        self.branch = branch
        self.states = LobbyStates(self)
        self.states.request("Lobby")
        self.net = net
        if net is not None:
            net.attach(self)
        for kind in LiveHall.handled():
            self.accept(f"net-{kind}", self.on_message)
        self._place_player()
        self.taskMgr.add(self._crowd_task, "crowd")
        self.taskMgr.add(self._video_task, "call-video")
        #: where the customer walks by themselves (after a click on a target): waypoints
        self.route: list[tuple[float, float]] = []
        self._route_to: Target | None = None
        self.taskMgr.add(self._walk_task, "walk")
        if not offscreen:
            self._bind_keys()

    # ------------------------------------------------------------------ the Screen protocol
    def show_status(self, text: str) -> None:
        self.status.setText(text)

    def clear_status(self) -> None:
        self.status.setText("")

    def open_mall(self) -> None:
        if self.branch is not None:
            self.branch.fetch_mall()  # live prices and stock each time the customer comes
        self.mall_screen.show(self.live.shelf)

    def close_mall(self) -> None:
        self.mall_screen.hide()

    # ------------------------------------------------------------------ the branch
    def enter_hall(self) -> Future[dict[str, Any]]:
        """Walk into the live hall where the player stands (a future: the ``welcome``)."""
        if self.branch is None:
            raise LobbyError("not connected to a branch: give --user and --password")
        p = self.pose
        return self.branch.enter(p.x, p.y, p.heading)

    def wait_for_hall(self, timeout: float = ENTER_TIMEOUT_S) -> None:
        """Enter the hall and handle messages until the server's ``lobby`` has arrived (for
        the offscreen screenshot: no task manager runs there)."""
        if self.net is None:
            raise LobbyError("no network link")
        entering = self.enter_hall()
        deadline = time.monotonic() + timeout
        while not (self.live.entered and entering.done()):
            if self.live.problem and not self.live.entered:
                raise LobbyError(self.live.problem)
            if time.monotonic() > deadline:
                raise LobbyError(f"the branch at {self.branch.server if self.branch else '?'} "
                                 f"did not let us into the hall within {timeout:g} s")
            self.net.drain(lambda event, message: self.messenger.send(event, [message]))
            time.sleep(0.01)
        entering.result()  # its failure, if any, as a LobbyError (LinkError)
        self.net.drain(lambda event, message: self.messenger.send(event, [message]))

    def on_message(self, message: dict[str, Any]) -> None:
        """A message from the branch (or the link): update the model, redraw what changed."""
        changed = self.live.apply(message, time.monotonic())
        if PRESENCE in changed:
            self.crowd.sync(self.live.presence, time.monotonic())
        if BOARD in changed:
            self.world.set_queue_board(self.live.board)
        if CALL in changed:
            self._follow_call()
        if SHELF in changed or STATUS in changed:
            shelf = self.live.shelf
            self.world.set_shelf_prices(shelf.price_list())
            self.mall_screen.refresh(shelf)
            self.hud.setText("\n".join(t for t in (shelf.hud(), self.live.problem) if t))

    def _crowd_task(self, task: Any) -> Any:
        self.crowd.sync(self.live.presence, time.monotonic())
        return task.cont

    # ------------------------------------------------------------------ the call
    def _follow_call(self) -> None:
        """Go where the branch's news about the call leads, and show the call."""
        target = wanted(self.states.state, self.live)
        if target is not None:
            call = self.live.call
            args = {"Queueing": (self.live.queued or self.states.service or "general_enquiry",),
                    "InCall": (call.agent or "teller",)}
            for state in route(self.states.state, target):
                self.states.request(state, *args.get(state, ()))
        call = self.live.call
        if call.paired and self.world.call_at is None:
            place = self.call_place or f"counter:{self.live.queued}"
            self.world.show_call_at(place if place in self.world.layout.targets else "kiosk")
            self._place_player()  # the camera turns to the screen
        elif not call.paired and self.world.call_at is not None:
            self.world.show_call_at(None)
            self._place_player()
        if self.states.state in IN_CALL:
            self.status.setText(call.status())
        self.call_screen.refresh(call, self.states.state)

    def _video_task(self, task: Any) -> Any:
        """Draw the newest frame of the call's video, if one came since the last frame."""
        if self.branch is not None and self.live.call.paired:
            frame = self.branch.call.frames.take()
            if frame is not None:
                self.world.show_frame(frame)
                self.frames_shown += 1
        return task.cont

    def show_id(self, typed: str) -> None:
        """Hold one's ID card up to the camera (the box's Enter at the identity step)."""
        self._call_command(lambda branch: branch.show_id(
            self.live.name or self.user_tag, self.live.call.id_number(typed)))

    def sign(self, name: str) -> None:
        """Sign the pushed contract with the typed name (the box's Enter)."""
        self._call_command(lambda branch: branch.send(self.live.call.sign(name)))

    def answer(self, option: str) -> None:
        """Click ``option`` of the open risk question."""
        self._call_command(lambda branch: branch.send(self.live.call.answer(option)))

    def _call_command(self, act: Callable[[BranchLink], object]) -> None:
        """Do what the customer asked in the call; what stops it shows top right."""
        try:
            if self.branch is None:
                raise CallProblem("not connected to the branch")
            act(self.branch)
        except CallProblem as exc:
            self.live.problem = str(exc)
        else:
            self.live.problem = ""
        self._show_problem()

    def _show_problem(self) -> None:
        self.hud.setText("\n".join(t for t in (self.live.shelf.hud(), self.live.problem) if t))

    # ------------------------------------------------------------------ moving
    def _bind_keys(self) -> None:
        for key, action in KEYS.items():
            self.accept(key, self.press, [action, True])
            self.accept(f"{key}-up", self.press, [action, False])
        for key in ("e", "space", "enter"):
            self.accept(key, self.interact)
        self.accept("mouse1", self._click)
        self.accept("escape", self.back)

    def press(self, action: str, down: bool) -> None:
        """A movement key: walks in the hall; at the shelf, up and down choose an item."""
        if self.call_screen.asking is not None:
            self.keys[action] = False  # the keys type into the box
            return
        if self.states.state == "Mall":
            self.keys[action] = False
            if down and action in ("forward", "back"):
                self.live.shelf.select(-1 if action == "forward" else 1)
                self.mall_screen.refresh(self.live.shelf)
            return
        self.keys[action] = down

    def back(self) -> None:
        """Esc: leave the shelf, the queue or the questionnaire; in the lobby, quit."""
        state = self.states.state
        if state == "Lobby":
            self.userExit()
        elif state in ("Queueing", *IN_CALL):
            if self.branch is not None:
                self.branch.leave_queue()  # the branch's ``left`` brings the lobby back
            if self.branch is None or state == "Queueing":
                self.live.queued = None
                self.states.request("Lobby")
        elif state == "Mall":
            self.states.request("Lobby" if not self.live.call.paired else "InCall",
                                *(() if not self.live.call.paired else
                                  (self.live.call.agent or "teller",)))

    def _walk_task(self, task: Any) -> Any:
        forward = float(self.keys["forward"]) - float(self.keys["back"])
        turn = float(self.keys["left"]) - float(self.keys["right"])
        dt = min(ClockObject.getGlobalClock().getDt(), 0.1)
        if forward or turn:
            self.route = []  # the keys take over from a walk the customer clicked for
            self.pose = step(self.world.layout, self.pose, forward, turn, dt)
            self._place_player()
        elif self.route:
            self._follow_route(dt)
        near = nearest_target(self.world.layout, self.pose.x, self.pose.y)
        state = self.states.state
        if near is None or state in ("Mall", "Queueing", "Signing", "Questionnaire") or (
                state == "InCall" and near.kind != "mall_shelf"):  # E does nothing there
            self.prompt.setText("")
        else:
            self.prompt.setText(f"E: {near.label.en} {near.label.zh}")
        return task.cont

    def go_to(self, target_id: str) -> None:
        """Walk to a target by oneself, round the furniture (a click on it; a scenario's
        ``walk_to``); arrived when ``route`` is empty. LobbyError if it cannot be reached."""
        target = self.world.layout.target(target_id)
        try:
            self.route = plan(self.world.layout, (self.pose.x, self.pose.y), target.approach())
        except ValueError as exc:
            raise LobbyError(f"cannot walk to {target_id}: {exc}") from exc
        self._route_to = target

    def _follow_route(self, dt: float) -> None:
        p, (wx, wy) = self.pose, self.route[0]
        gap, reach = math.hypot(wx - p.x, wy - p.y), WALK_SPEED * dt
        heading = heading_to(p.x, p.y, wx, wy) if gap > 1e-6 else p.heading
        if gap <= reach:
            self.route.pop(0)
            pose = Pose(wx, wy, heading)
            if not self.route and self._route_to is not None:  # arrived: face it
                pose = Pose(wx, wy, heading_to(wx, wy, self._route_to.x, self._route_to.y))
        else:
            f = reach / gap
            pose = Pose(p.x + (wx - p.x) * f, p.y + (wy - p.y) * f, heading)
        self.place(pose)

    def place(self, pose: Pose) -> None:
        """Put the player at ``pose`` (scenario steps and tests use it)."""
        self.pose = pose
        self._place_player()

    def _place_player(self) -> None:
        p = self.pose
        if self.branch is not None:
            self.branch.walk(p.x, p.y, p.heading)  # the link sends it if it changed
        self.player.setPos(p.x, p.y, 0)
        self.player.find("body").setH(p.heading)
        self.camera.setPos(self.player, 0, 0, 0)
        self.camera.setHpr(p.heading, 0, 0)  # level first: the move below is relative to it
        if self.world.call_at is not None:
            # over the shoulder, so the call's screen is not behind the customer's head
            self.player.find("tag").hide()  # it would stand in front of the screen
            side, back, up = CALL_CAMERA
            self.camera.setPos(self.camera, side, -back, up)
            h = math.radians(p.heading)
            self.camera.lookAt(Point3(p.x - math.sin(h) * 2.4, p.y + math.cos(h) * 2.4, 1.55))
            self.camera.setR(0)
            return
        self.player.find("tag").show()
        self.camera.setPos(self.camera, 0, -CAMERA_BACK, CAMERA_UP)
        self.camera.lookAt(self.player, 0, 0, 1.2)
        self.camera.setP(self.camera.getP() + 8)  # look past the player into the hall
        self.camera.setR(0)

    # ------------------------------------------------------------------ acting
    def interact(self) -> Target | None:
        """Use what is within reach: a counter joins its queue, the shelf opens the mall,
        the booth the questionnaire, the kiosk the digital human's queue."""
        target = nearest_target(self.world.layout, self.pose.x, self.pose.y)
        if self.states.state == "Mall":
            self.redeem_chosen()
            return target
        if target is None:
            return None
        self.messenger.send("lobby-interact", [target.id])
        if self.states.state == "InCall" and target.kind == "mall_shelf":
            self.states.request("Mall")  # the shelf is open during a call too
        if self.states.state != "Lobby":
            return target
        service = target.service or SERVICE_OF.get(target.kind)
        if service is not None:
            self.live.join_refused, self.live.call.ended = False, None
            self.call_place = target.id
            self.states.request("Queueing", service)
            if self.branch is not None:
                self.branch.join(service)
        elif target.kind == "mall_shelf":
            self.states.request("Mall")
        return target

    def redeem_chosen(self) -> None:
        """Confirm the item chosen on the shelf: one redemption, one Idempotency-Key."""
        command = self.live.shelf.confirm()
        if command is not None:
            if self.branch is None:
                self.live.shelf.failed("not connected to the branch")
            else:
                self.branch.redeem(command)
        self.mall_screen.refresh(self.live.shelf)

    def _click(self) -> None:
        if self.mouseWatcherNode.hasMouse():
            mouse = self.mouseWatcherNode.getMouse()
            picked = self.world.pick(self.cam, mouse.getX(), mouse.getY())
            if picked is not None:
                self.messenger.send("lobby-click", [picked])
                if self.states.state in ("Lobby", "InCall"):
                    with contextlib.suppress(LobbyError):  # nowhere to stand: stay
                        self.go_to(picked)

    def screenshot(self, path: Path) -> None:
        """Render a few frames and save the last one as a PNG."""
        for _ in range(SETTLE_FRAMES):
            self.graphicsEngine.renderFrame()
        path.parent.mkdir(parents=True, exist_ok=True)
        if not self.win.saveScreenshot(Filename.fromOsSpecific(str(path))):
            raise LobbyError(f"{path}: cannot write the screenshot")


def run(args: argparse.Namespace) -> int:
    """Run the client as the command line asked; returns the exit status."""
    if args.offscreen and args.screenshot is None:
        raise LobbyError("--offscreen needs --screenshot FILE.png")
    if (args.user is None) != (args.password is None):
        raise LobbyError("--user and --password go together")
    layout = load_layout(args.layout)
    net = NetLink().start() if args.user is not None or not args.offscreen else None
    branch = None if net is None or args.user is None else \
        BranchLink(net, args.server, args.user, args.password, microphone=args.microphone,
                   speaker=args.speaker, language=args.lang)
    app = LobbyApp(layout, offscreen=args.offscreen, size=args.size, user=args.user, net=net,
                   branch=branch)
    try:
        if args.offscreen:
            if branch is not None:
                app.wait_for_hall()
            app.screenshot(args.screenshot)
            print(f"{args.screenshot}: {args.size[0]}x{args.size[1]}")
            return 0
        if branch is not None:
            app.enter_hall()  # how it went arrives as messages: the status line says
        if args.screenshot is not None:
            app.accept("f12", app.screenshot, [args.screenshot])
        app.run()
        return 0
    finally:
        if branch is not None:
            branch.close()
        if net is not None:
            net.stop()
        app.destroy()
