"""The hall as a scene graph, built from the hall file; no ShowBase needed to build it.

``World`` owns everything under ``root``: floor, walls, ceiling, the targets (each a node
named by its id, placed and turned as the file says, with a collision box for mouse
picking), lights, the live queue board, and the screens calls play on: the kiosk's, and one
on each counter that appears while the customer is in a call there. All of them show one
texture, fed frame by frame from the call's video (``show_frame``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from panda3d.core import (
    AmbientLight,
    BitMask32,
    CollisionBox,
    CollisionHandlerQueue,
    CollisionNode,
    CollisionRay,
    CollisionTraverser,
    DirectionalLight,
    NodePath,
    Point3,
    PointLight,
    SamplerState,
    TextNode,
    Texture,
    TextureStage,
)

from client.lobby import furniture
from client.lobby.board import QueueRow
from client.lobby.board import columns as board_columns
from client.lobby.labels import sign, text_node
from client.lobby.layout import Layout, Target
from client.lobby.shapes import box, panel, tiled_floor
from vbank.domain.services import SERVICES

PICK_MASK = BitMask32.bit(4)
WALL = (0.95, 0.93, 0.89, 1)
WAINSCOT = (0.50, 0.34, 0.21, 1)
#: the price list above the mall shelf: metres of text area, and the tallest line
PRICE_WIDTH, PRICE_HEIGHT, PRICE_LINE = 4.2, 1.2, 0.16


def pow2(n: int) -> int:
    """The smallest power of two ≥ n (the software renderer draws no other texture sizes)."""
    return 1 << max(0, n - 1).bit_length()


def placeholder_face(size: int = 256) -> np.ndarray:
    """The kiosk's idle picture (BGR, row 0 at the top): a friendly figure on a blue field."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    img = np.zeros((size, size, 3), np.float32)
    img[..., 0] = 0.85 - 0.35 * yy  # blue
    img[..., 1] = 0.55 - 0.25 * yy
    img[..., 2] = 0.20 + 0.05 * yy
    shoulders = ((xx - 0.5) / 0.36) ** 2 + ((yy - 1.02) / 0.3) ** 2 < 1
    img[shoulders] = (0.45, 0.22, 0.12)  # navy suit
    collar = shoulders & (np.abs(xx - 0.5) < 0.2 - (yy - 0.74) * 0.9) & (yy > 0.74)
    img[collar] = (0.97, 0.97, 0.97)
    face = ((xx - 0.5) / 0.16) ** 2 + ((yy - 0.48) / 0.21) ** 2 < 1
    img[face] = (0.66, 0.80, 0.96)
    hair = (((xx - 0.5) / 0.18) ** 2 + ((yy - 0.40) / 0.2) ** 2 < 1) & (yy < 0.36)
    img[hair] = (0.07, 0.09, 0.12)
    for ex in (0.44, 0.56):
        img[((xx - ex) / 0.018) ** 2 + ((yy - 0.47) / 0.024) ** 2 < 1] = (0.15, 0.1, 0.1)
    smile = (np.abs(((xx - 0.5) / 0.06) ** 2 + ((yy - 0.54) / 0.05) ** 2 - 1) < 0.35) & (yy > 0.56)
    img[smile] = (0.25, 0.2, 0.6)
    return (img * 255).astype(np.uint8)


class World:
    """The hall; ``root`` is not attached anywhere until the app reparents it to ``render``."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.root = NodePath("lobby")
        self.targets: dict[str, NodePath] = {}
        self.screen_texture = Texture("kiosk-screen")
        self._screen_card: NodePath | None = None
        #: counter id -> (the screen standing on it, its card); shown during a call there
        self._call_screens: dict[str, tuple[NodePath, NodePath]] = {}
        self.call_at: str | None = None  # the target whose screen shows the call
        self._frame_size: tuple[int, int] | None = None  # of the picture on the screens
        self._board: dict[str, TextNode] = {}  # the queue board's columns
        #: the price list above the mall shelf, built when the first prices arrive
        self._prices: TextNode | None = None
        self._prices_path: NodePath | None = None
        #: built on the first pick: traverser, its queue, the ray and the ray's node
        self._picker: tuple[CollisionTraverser, CollisionHandlerQueue, CollisionRay,
                            NodePath] | None = None
        self._build_room()
        numbers = {f"counter:{s}": i + 1 for i, s in enumerate(SERVICES)}
        for target in layout.targets.values():
            node = self._build_target(target, numbers.get(target.id, 0))
            if target.kind not in ("kiosk", "queue_board"):  # those two change while shown
                node.flattenStrong()  # before placing: flattening bakes the node's transform
            node.reparentTo(self.root)
            node.setPos(target.x, target.y, target.z)
            node.setH(target.heading + 180)  # builders face -y; a heading of 0 faces +y
            if target.interact:  # a click on a bench or the doorway does nothing
                self._add_pick_box(node, target)
            if target.kind == "counter":
                screen, card = furniture.build_call_screen(target)
                screen.reparentTo(node)
                screen.setPos(0, target.depth * 0.25, target.height)
                card.setTexture(self.screen_texture)
                screen.hide()
                self._call_screens[target.id] = (screen, card)
            self.targets[target.id] = node
        self._light()
        self.show_frame(placeholder_face())
        self.set_queue_board([QueueRow(s, 0, 0.0) for s in SERVICES])

    # ------------------------------------------------------------------ building
    def _build_room(self) -> None:
        hall = self.layout.hall
        w, d, h = hall.width, hall.depth, hall.height
        room = self.root.attachNewNode("room")
        floor = tiled_floor("floor", w, d, 1.0, ((0.87, 0.85, 0.81, 1), (0.82, 0.80, 0.76, 1)))
        floor.reparentTo(room)
        street = tiled_floor("street", w + 12, 8, 2.0, ((0.42, 0.43, 0.45, 1),
                                                        (0.38, 0.39, 0.41, 1)))
        street.reparentTo(room)
        street.setPos(0, -d / 2 - 4, -0.02)
        ceiling = tiled_floor("ceiling", w, d, 2.0, ((0.97, 0.97, 0.96, 1), (0.93, 0.93, 0.92, 1)))
        ceiling.reparentTo(room)
        ceiling.setPos(0, 0, h)
        ceiling.setP(180)  # face down
        for x in range(-int(w / 2) + 3, int(w / 2) - 1, 6):
            for y in range(-int(d / 2) + 3, int(d / 2) - 1, 5):
                lamp = box("lamp", (1.6, 0.6, 0.03), (1, 0.98, 0.9, 1))
                lamp.reparentTo(room)
                lamp.setPos(x, y, h - 0.03)
                lamp.setLightOff()
        entrance = self.layout.target("entrance")
        door = entrance.width / 2
        # (centre x, centre y, heading, width): each wall faces into the hall
        walls: list[tuple[float, float, float, float]] = [
            (0, d / 2, 0, w), (-w / 2, 0, 90, d), (w / 2, 0, -90, d),
            (-(w / 2 + door) / 2, -d / 2, 180, w / 2 - door),
            ((w / 2 + door) / 2, -d / 2, 180, w / 2 - door)]
        for wx, wy, heading, width in walls:
            wall = room.attachNewNode("wall")
            wall.setPos(wx, wy, 0)
            wall.setH(heading)
            panel("plaster", width, h, WALL, columns=max(1, int(width / 2)), rows=3
                  ).reparentTo(wall)
            backing = panel("backing", width + 0.2, h, WALL)  # fills the software
            backing.reparentTo(wall)  # renderer's pixel cracks between the plaster's quads
            backing.setY(0.03)
            band = panel("wainscot", width, 1.0, WAINSCOT, columns=max(1, int(width / 2)))
            band.reparentTo(wall)
            band.setY(-0.01)
            trim = panel("trim", width, 0.08, furniture.GOLD)
            trim.reparentTo(wall)
            trim.setPos(0, -0.015, 1.0)
        lintel = panel("lintel", 2 * door, h - entrance.height, WALL)
        lintel.reparentTo(room)
        lintel.setPos(entrance.x, -d / 2, entrance.height)
        lintel.setH(180)
        for i, (px, py) in enumerate(((-w / 2 + 0.6, d / 2 - 0.6), (w / 2 - 0.6, d / 2 - 0.6),
                                    (-w / 2 + 0.6, -d / 2 + 0.6), (w / 2 - 0.6, -d / 2 + 0.6),
                                    (-w / 2 + 0.6, -4.0), (-2.7, -d / 2 + 0.6),
                                    (2.7, -d / 2 + 0.6))):
            plant = furniture.build_plant(f"plant-{i}")
            plant.reparentTo(room)
            plant.setPos(px, py, 0)
        for sx, text in ((-w / 4 - 1.2, hall.name), (w / 4 + 1.2, hall.welcome)):
            name = sign(room, "hall-sign", text, max_width=5.0, height=0.42,
                        color=furniture.BRAND)
            name.setPos(sx, d / 2 - 0.02, 4.2)
        room.flattenStrong()  # nothing in the room moves: fewer, larger batches draw faster


    def _build_target(self, target: Target, number: int) -> NodePath:
        kind = target.kind
        if kind == "counter":
            return furniture.build_counter(target, number)
        if kind == "kiosk":
            kiosk, self._screen_card = furniture.build_kiosk(target)
            self._screen_card.setTexture(self.screen_texture)
            return kiosk
        if kind == "mall_shelf":
            return furniture.build_mall_shelf(target)
        if kind == "risk_booth":
            return furniture.build_risk_booth(target)
        if kind == "seating":
            return furniture.build_bench(target)
        if kind == "queue_board":
            return self._build_queue_board(target)
        return furniture.build_entrance(target)

    def _build_queue_board(self, t: Target) -> NodePath:
        root = NodePath(t.id)
        box("housing", (t.width, t.depth, t.height), (0.12, 0.13, 0.16, 1)).reparentTo(root)
        screen = panel("screen", t.width - 0.16, t.height - 0.16, (0.03, 0.09, 0.2, 1))
        screen.reparentTo(root)
        screen.setPos(0, -t.depth / 2 - 0.005, 0.08)
        screen.setLightOff()
        title = sign(root, "title", t.label, max_width=3.0, height=0.24, color=furniture.GOLD)
        title.setPos(-t.width / 2 + 0.9, -t.depth / 2 - 0.02, t.height - 0.42)
        columns = (("names", -t.width / 2 + 1.75, TextNode.ALeft),
                   ("waiting", t.width / 2 - 1.15, TextNode.ARight),
                   ("wait", t.width / 2 - 0.2, TextNode.ARight))
        for name, x, align in columns:
            node = text_node(f"board-{name}", "", (1, 1, 1, 1), align)
            path = root.attachNewNode(node)
            path.setScale(0.21)
            path.setPos(x, -t.depth / 2 - 0.02, t.height - 0.42)
            path.setLightOff()
            path.setDepthOffset(1)
            self._board[name] = node
        return root

    def _add_pick_box(self, node: NodePath, t: Target) -> None:
        solid = CollisionBox(Point3(0, 0, t.height / 2), t.width / 2, max(t.depth, 0.1) / 2,
                             t.height / 2)
        pick = CollisionNode(f"pick:{t.id}")
        pick.addSolid(solid)
        pick.setIntoCollideMask(PICK_MASK)
        pick.setPythonTag("target", t.id)
        node.attachNewNode(pick)

    def _light(self) -> None:
        ambient = AmbientLight("ambient")
        ambient.setColor((0.46, 0.45, 0.43, 1))
        sun = DirectionalLight("sky")  # daylight through the street windows, from the front
        sun.setColor((0.42, 0.41, 0.38, 1))
        lights = [self.root.attachNewNode(ambient), self.root.attachNewNode(sun)]
        lights[1].setHpr(-25, -55, 0)
        warm, cool = (0.55, 0.48, 0.38, 1), (0.35, 0.42, 0.55, 1)
        spots = [((0, 5.0, 3.6), warm), ((-8.0, 0.0, 3.4), cool), ((9.5, 1.0, 3.4), warm),
                 ((0, -3.0, 3.8), warm)]
        for i, ((x, y, z), color) in enumerate(spots):
            point = PointLight(f"lamp-{i}")
            point.setColor(color)
            point.setAttenuation((1, 0, 0.025))
            lamp = self.root.attachNewNode(point)
            lamp.setPos(x, y, z)
            lights.append(lamp)
        for light in lights:
            self.root.setLight(light)

    # ------------------------------------------------------------------ live parts
    def set_queue_board(self, rows: Sequence[QueueRow]) -> None:
        """Show each service's queue length and estimated wait."""
        for column, text in zip(("names", "waiting", "wait"), board_columns(rows), strict=True):
            self._board[column].setText(text)

    def set_shelf_prices(self, text: str) -> None:
        """Show the mall's items with this customer's prices and stock above the shelf."""
        if self._prices is None:
            if not text:
                return  # no board at all until there is something to show on it
            self._build_price_board()
        assert self._prices is not None and self._prices_path is not None
        self._prices.setText(text)
        width, height = max(self._prices.getWidth(), 1e-3), max(self._prices.getHeight(), 1e-3)
        scale = min(PRICE_LINE, PRICE_WIDTH / width, PRICE_HEIGHT / height)
        self._prices_path.setScale(scale)
        # text hangs from its first baseline: put the first line's top at the screen's top
        self._prices_path.setZ(PRICE_HEIGHT + 0.15 - 0.85 * scale)

    def shelf_prices_text(self) -> str:
        return "" if self._prices is None else str(self._prices.getText())

    def _build_price_board(self) -> None:
        shelf = self.layout.target("mall_shelf")
        node = self.targets["mall_shelf"]  # in the builder's frame: front towards -y
        board = node.attachNewNode("price-board")
        board.setPos(0, -0.05, shelf.height + 0.5)
        frame = panel("frame", PRICE_WIDTH + 0.3, PRICE_HEIGHT + 0.3, furniture.GOLD)
        frame.reparentTo(board)
        frame.setLightOff()
        screen = panel("screen", PRICE_WIDTH + 0.16, PRICE_HEIGHT + 0.16, (0.03, 0.09, 0.2, 1))
        screen.reparentTo(board)
        screen.setPos(0, -0.01, 0.07)
        screen.setLightOff()
        self._prices = text_node("shelf-prices", "", (1, 1, 1, 1), TextNode.ALeft)
        path = board.attachNewNode(self._prices)
        path.setPos(-PRICE_WIDTH / 2, -0.02, 0)
        path.setLightOff()
        path.setDepthOffset(1)
        self._prices_path = path

    def queue_board_text(self) -> str:
        return "\n".join(self._board[c].getText() for c in ("names", "waiting", "wait"))

    def show_frame(self, bgr: np.ndarray) -> None:
        """Draw a BGR picture (row 0 at the top, any size) on the kiosk's screen, padded to
        power-of-two sides."""
        h, w = bgr.shape[:2]
        tw, th = pow2(w), pow2(h)
        tex = self.screen_texture
        if (tex.getXSize(), tex.getYSize()) != (tw, th):
            tex.setup2dTexture(tw, th, Texture.T_unsigned_byte, Texture.F_rgb8)
            tex.setMinfilter(SamplerState.FT_linear)
            tex.setMagfilter(SamplerState.FT_linear)
            tex.setWrapU(SamplerState.WM_clamp)
            tex.setWrapV(SamplerState.WM_clamp)
        padded = np.zeros((th, tw, 3), np.uint8)
        padded[:h, :w] = bgr[::-1]  # Panda's rows start at the bottom
        tex.setRamImage(padded)
        if (w, h) != self._frame_size:
            self._frame_size = (w, h)
            cards = [card for _, card in self._call_screens.values()]
            for card in [self._screen_card, *cards]:
                if card is not None:
                    card.setTexScale(TextureStage.getDefault(), w / tw, h / th)

    def show_call_at(self, target_id: str | None) -> None:
        """Play the call on ``target_id``'s screen (a counter's rises from it; the kiosk has
        its own), or, with None, put the screens away and the kiosk's idle face back."""
        for counter, (screen, _) in self._call_screens.items():
            if counter == target_id:
                screen.show()
            else:
                screen.hide()
        if target_id is None and self.call_at is not None:
            self.show_frame(placeholder_face())
        self.call_at = target_id

    def pick(self, camera: NodePath, mouse_x: float, mouse_y: float) -> str | None:
        """The target under the mouse (coordinates in -1..1), or None."""
        if self._picker is None:
            ray = CollisionRay()
            node = CollisionNode("mouse-ray")
            node.addSolid(ray)
            node.setFromCollideMask(PICK_MASK)
            node.setIntoCollideMask(BitMask32.allOff())
            traverser, queue = CollisionTraverser("pick"), CollisionHandlerQueue()
            ray_node = camera.attachNewNode(node)
            traverser.addCollider(ray_node, queue)
            self._picker = (traverser, queue, ray, ray_node)
        traverser, queue, ray, ray_node = self._picker
        if ray_node.getParent() != camera:
            ray_node.reparentTo(camera)
        ray.setFromLens(camera.node(), mouse_x, mouse_y)
        traverser.traverse(self.root)
        if queue.getNumEntries() == 0:
            return None
        queue.sortEntries()
        return str(queue.getEntry(0).getIntoNode().getPythonTag("target"))
