"""``vbank lobby``: the one ShowBase of the 3D client, in a window or offscreen.

Offscreen it uses the software renderer's ``TinyOffscreenGraphicsPipe`` (no X server, no
GPU), renders a few frames, saves a screenshot and exits. In a window the customer walks
with the arrows or WASD, uses what is near with E or space, and clicks on things.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from direct.gui.OnscreenText import OnscreenText
from direct.showbase.ShowBase import ShowBase
from panda3d.core import (
    ClockObject,
    Filename,
    GraphicsPipeSelection,
    TextNode,
    TypeHandle,
    TypeRegistry,
    loadPrcFileData,
)

from client.lobby import LobbyError
from client.lobby.avatar import build_avatar
from client.lobby.labels import label_font
from client.lobby.layout import Layout, Target, load_layout, nearest_target
from client.lobby.net import NetLink
from client.lobby.states import LobbyStates
from client.lobby.walking import Pose, spawn_pose, step
from client.lobby.world import World

log = logging.getLogger(__name__)

SKY = (0.70, 0.80, 0.90, 1)
#: the third-person camera: metres behind the player, metres up, and where it looks
CAMERA_BACK, CAMERA_UP, LOOK_AHEAD = 6.0, 3.4, 3.0
#: horizontal field of view, degrees
FOV = 68
#: frames rendered before an offscreen screenshot, so that fonts and textures settle
SETTLE_FRAMES = 3
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
                 user: str | None = None, net: NetLink | None = None) -> None:
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
        self.player = build_avatar("player", (0.85, 0.38, 0.16, 1), skin=1, tag=user or "You 您")
        self.player.reparentTo(self.render)
        self.keys = dict.fromkeys(("forward", "back", "left", "right"), False)
        self.status = OnscreenText(text="", pos=(-1.72, 0.9), scale=0.05, align=TextNode.ALeft,
                                   fg=(1, 1, 1, 1), bg=(0.05, 0.1, 0.2, 0.6),
                                   font=label_font(), mayChange=True)
        self.prompt = OnscreenText(text="", pos=(0, -0.9), scale=0.055, fg=(1, 1, 1, 1),
                                   bg=(0.05, 0.1, 0.2, 0.6), font=label_font(), mayChange=True)
        self.states = LobbyStates(self)
        self.states.request("Lobby")
        self.net = net
        if net is not None:
            net.attach(self)
        self._place_player()
        if not offscreen:
            self._bind_keys()
            self.taskMgr.add(self._walk_task, "walk")

    # ------------------------------------------------------------------ the Screen protocol
    def show_status(self, text: str) -> None:
        self.status.setText(text)

    def clear_status(self) -> None:
        self.status.setText("")

    # ------------------------------------------------------------------ moving
    def _bind_keys(self) -> None:
        for key, action in KEYS.items():
            self.accept(key, self.keys.__setitem__, [action, True])
            self.accept(f"{key}-up", self.keys.__setitem__, [action, False])
        for key in ("e", "space"):
            self.accept(key, self.interact)
        self.accept("mouse1", self._click)
        self.accept("escape", self.userExit)

    def _walk_task(self, task: Any) -> Any:
        forward = float(self.keys["forward"]) - float(self.keys["back"])
        turn = float(self.keys["left"]) - float(self.keys["right"])
        if forward or turn:
            dt = min(ClockObject.getGlobalClock().getDt(), 0.1)
            self.pose = step(self.world.layout, self.pose, forward, turn, dt)
            self._place_player()
        near = nearest_target(self.world.layout, self.pose.x, self.pose.y)
        self.prompt.setText(f"E: {near.label.en} {near.label.zh}" if near else "")
        return task.cont

    def place(self, pose: Pose) -> None:
        """Put the player at ``pose`` (scenario steps and tests use it)."""
        self.pose = pose
        self._place_player()

    def _place_player(self) -> None:
        p = self.pose
        self.player.setPos(p.x, p.y, 0)
        self.player.find("body").setH(p.heading)
        self.camera.setPos(self.player, 0, 0, 0)
        self.camera.setHpr(p.heading, 0, 0)  # level first: the move below is relative to it
        self.camera.setPos(self.camera, 0, -CAMERA_BACK, CAMERA_UP)
        self.camera.lookAt(self.player, 0, 0, 1.2)
        self.camera.setP(self.camera.getP() + 8)  # look past the player into the hall
        self.camera.setR(0)

    # ------------------------------------------------------------------ acting
    def interact(self) -> Target | None:
        """Use what is within reach: a counter joins its queue, the shelf opens the mall,
        the booth the questionnaire, the kiosk the digital human's queue."""
        target = nearest_target(self.world.layout, self.pose.x, self.pose.y)
        if target is None:
            return None
        self.messenger.send("lobby-interact", [target.id])
        if self.states.state != "Lobby":
            return target
        if target.service is not None:
            self.states.request("Queueing", target.service)
        elif target.kind == "kiosk":
            self.states.request("Queueing", "general_enquiry")
        elif target.kind == "mall_shelf":
            self.states.request("Mall")
        elif target.kind == "risk_booth":
            self.states.request("Questionnaire")
        return target

    def _click(self) -> None:
        if self.mouseWatcherNode.hasMouse():
            mouse = self.mouseWatcherNode.getMouse()
            picked = self.world.pick(self.cam, mouse.getX(), mouse.getY())
            if picked is not None:
                self.messenger.send("lobby-click", [picked])

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
    if args.offscreen:
        app = LobbyApp(layout, offscreen=True, size=args.size, user=args.user)
        app.screenshot(args.screenshot)
        print(f"{args.screenshot}: {args.size[0]}x{args.size[1]}")
        app.destroy()
        return 0
    net = NetLink().start()  # the network calls themselves come with presence and calls
    app = LobbyApp(layout, offscreen=False, size=args.size, user=args.user, net=net)
    if args.screenshot is not None:
        app.accept("f12", app.screenshot, [args.screenshot])
    try:
        app.run()
    finally:
        net.stop()
    return 0
