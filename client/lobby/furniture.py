"""One builder per kind of target: counters, the kiosk, the mall shelf, the risk booth, benches.

Each builds in the target's own frame: origin on the floor at the centre of its footprint,
its front towards -y (the way Panda's cards and text face), size from the hall file.
``world`` places and turns the result.
"""

from __future__ import annotations

from panda3d.core import CardMaker, NodePath, TransparencyAttrib

from client.lobby.avatar import build_avatar
from client.lobby.labels import sign, text_node
from client.lobby.layout import Target
from client.lobby.shapes import box, cylinder, panel, sphere

Color = tuple[float, float, float, float]

WOOD = (0.55, 0.37, 0.23, 1)
STONE = (0.95, 0.94, 0.91, 1)
BRAND = (0.09, 0.31, 0.60, 1)  # the bank's blue
GOLD = (0.86, 0.69, 0.31, 1)
METAL = (0.62, 0.64, 0.67, 1)
GLASS = (0.72, 0.86, 0.96, 0.28)
UPHOLSTERY = (0.13, 0.47, 0.55, 1)
GOODS: tuple[Color, ...] = ((0.86, 0.22, 0.20, 1), (0.96, 0.73, 0.18, 1), (0.20, 0.62, 0.36, 1),
                            (0.27, 0.48, 0.86, 1), (0.80, 0.42, 0.70, 1), (0.95, 0.95, 0.95, 1))


def _put(parent: NodePath, child: NodePath, pos: tuple[float, float, float]) -> NodePath:
    child.reparentTo(parent)
    child.setPos(*pos)
    return child


def build_counter(t: Target, number: int) -> NodePath:
    """A teller's counter: wooden body, stone top, glass screen, a teller and a hanging sign."""
    root = NodePath(t.id)
    w, d, h = t.width, t.depth, t.height
    _put(root, box("body", (w, d, h), WOOD), (0, 0, 0))
    _put(root, panel("stripe", w, 0.12, BRAND), (0, -d / 2 - 0.005, h - 0.3))
    _put(root, box("top", (w + 0.1, d + 0.12, 0.05), STONE), (0, 0, h))
    glass = _put(root, box("glass", (w - 0.3, 0.02, 0.65), GLASS), (0, 0.15, h + 0.05))
    glass.setTransparency(TransparencyAttrib.MAlpha)
    glass.setDepthWrite(False)
    glass.setBin("transparent", 10)
    _put(root, box("monitor", (0.5, 0.05, 0.32), (0.15, 0.15, 0.17, 1)), (0.9, 0.35, h + 0.12))
    teller = _put(root, build_avatar("teller", (0.16, 0.22, 0.36, 1), skin=number, hair=number),
                  (0, d / 2 + 0.45, 0))
    teller.setH(180)
    plate = _put(root, panel("sign-plate", w - 0.5, 0.72, BRAND), (0, -d / 2, 2.05))
    for side in (-1, 1):  # the posts that hold the sign above the glass
        _put(root, cylinder("post", 0.02, 2.1 - h, METAL, segments=6),
             (side * (w / 2 - 0.4), -d / 2 + 0.04, h))
    badge = _put(plate, panel("badge", 0.5, 0.5, GOLD), (-(w - 0.5) / 2 + 0.35, -0.01, 0.11))
    digit = badge.attachNewNode(text_node("number", str(number), (0.1, 0.12, 0.2, 1)))
    digit.setScale(0.38)
    digit.setPos(0, -0.01, 0.12)
    digit.setLightOff()
    label = sign(plate, "sign", t.label, max_width=w - 1.5, height=0.24)
    label.setPos(0.2, -0.02, 0.44)
    return root


def build_kiosk(t: Target) -> tuple[NodePath, NodePath]:
    """The digital human's kiosk: a pedestal and a portrait screen. Returns (kiosk, screen
    card), the card is what video frames will be drawn on."""
    root = NodePath(t.id)
    _put(root, box("base", (0.9, 0.6, 0.08), METAL), (0, 0, 0))
    _put(root, box("pillar", (0.36, 0.24, 0.8), STONE), (0, 0.05, 0.08))
    _put(root, box("housing", (1.1, 0.14, 1.5), (0.93, 0.94, 0.96, 1)), (0, 0, 0.85))
    _put(root, panel("trim", 1.1, 0.06, BRAND), (0, -0.075, 0.85))
    card = CardMaker("screen")  # a card, unlike a panel, has texture coordinates
    card.setFrame(-0.47, 0.47, 0, 1.3)
    screen = _put(root, NodePath(card.generate()), (0, -0.072, 0.98))
    screen.setLightOff()
    label = sign(root, "sign", t.label, max_width=1.3, height=0.17, card=BRAND)
    label.setPos(0, -0.08, 2.62)
    return root, screen


def build_call_screen(t: Target) -> tuple[NodePath, NodePath]:
    """A landscape screen standing on a counter's teller side, facing the customer: where the
    teller's or the digital human's video plays during a call there. Returns (the screen
    with its frame, the card the frames are drawn on)."""
    width = min(1.2, t.width * 0.4)  # below the counter's sign, seen past the customer
    height = width * 0.75
    root = NodePath(f"call-screen:{t.id}")
    _put(root, box("stand", (0.12, 0.08, 0.06), METAL), (0, 0.06, 0))
    _put(root, box("bezel", (width + 0.08, 0.05, height + 0.08), (0.12, 0.13, 0.15, 1)),
         (0, 0.04, 0.04))
    card = CardMaker("screen")
    card.setFrame(-width / 2, width / 2, 0, height)
    screen = _put(root, NodePath(card.generate()), (0, 0.01, 0.08))
    screen.setLightOff()
    return root, screen


def build_mall_shelf(t: Target) -> NodePath:
    """The points mall: a wooden shelf of brightly coloured goods under a gold header."""
    root = NodePath(t.id)
    w, d, h = t.width, t.depth, t.height
    _put(root, box("back", (w, 0.05, h), (0.93, 0.90, 0.84, 1)), (0, d / 2 - 0.025, 0))
    for side in (-1, 1):
        _put(root, box("side", (0.06, d, h), WOOD), (side * (w / 2 - 0.03), 0, 0))
    levels = (0.12, 0.66, 1.2, 1.74)
    for row, z in enumerate(levels):
        _put(root, box("shelf", (w - 0.12, d - 0.05, 0.04), WOOD), (0, 0, z - 0.04))
        for col in range(6):
            x = -w / 2 + 0.45 + col * (w - 0.9) / 5
            color = GOODS[(row * 2 + col) % len(GOODS)]
            shape = (row + col) % 3
            if shape == 0:
                good = box("good", (0.34, 0.26, 0.30 + 0.04 * (col % 3)), color)
            elif shape == 1:
                good = cylinder("good", 0.12, 0.36, color, segments=12)
            else:
                good = sphere("good", 0.15, color)
                good.setZ(0.15)
            _put(root, good, (x, -0.05, z + good.getZ()))
    _put(root, box("header", (w, 0.1, 0.42), GOLD), (0, 0, h))
    label = sign(root, "sign", t.label, max_width=w * 0.5, height=0.15,
                 color=(0.25, 0.12, 0.04, 1))
    label.setPos(0, -0.06, h + 0.26)
    return root


def build_risk_booth(t: Target) -> NodePath:
    """A small open-fronted room with a desk and a screen for the risk questionnaire."""
    root = NodePath(t.id)
    w, d, h = t.width, t.depth, t.height
    wall = (0.90, 0.92, 0.95, 1)
    _put(root, box("back", (w, 0.08, h), wall), (0, d / 2 - 0.04, 0))
    for side in (-1, 1):
        _put(root, box("side", (0.08, d, h), wall), (side * (w / 2 - 0.04), 0, 0))
    _put(root, box("roof", (w, d, 0.08), wall), (0, 0, h))
    _put(root, box("lintel", (w, 0.1, 0.45), BRAND), (0, -d / 2 + 0.05, h - 0.37))
    _put(root, box("desk", (1.4, 0.6, 0.75), WOOD), (0, d / 2 - 0.5, 0))
    screen = _put(root, panel("screen", 0.7, 0.45, (0.35, 0.65, 0.9, 1)), (0, d / 2 - 0.55, 0.9))
    screen.setLightOff()
    _put(root, box("chair", (0.5, 0.5, 0.45), UPHOLSTERY), (0, -0.1, 0))
    label = sign(root, "sign", t.label, max_width=w - 0.3, height=0.14)
    label.setPos(0, -d / 2 - 0.01, h - 0.12)
    return root


def build_bench(t: Target) -> NodePath:
    """A padded bench; its back is behind the sitter, so it faces the way the target does."""
    root = NodePath(t.id)
    w, d = t.width, t.depth
    _put(root, box("seat", (w, d, 0.1), UPHOLSTERY), (0, 0, 0.4))
    _put(root, box("backrest", (w, 0.1, 0.45), UPHOLSTERY), (0, d / 2 - 0.05, 0.5))
    for x in (-w / 2 + 0.15, w / 2 - 0.15):
        for y in (-d / 2 + 0.1, d / 2 - 0.1):
            _put(root, box("leg", (0.05, 0.05, 0.4), METAL), (x, y, 0))
    return root


def build_entrance(t: Target) -> NodePath:
    """A mat inside the door and the sign above it (read by those leaving)."""
    root = NodePath(t.id)
    _put(root, box("mat", (t.width - 0.6, 1.6, 0.015), (0.55, 0.12, 0.14, 1)), (0, -0.8, 0))
    label = sign(root, "sign", t.label, max_width=t.width - 1.0, height=0.2, card=BRAND)
    label.setPos(0, 0.2, t.height + 0.35)  # its front faces into the hall: read on leaving
    return root


def build_plant(name: str) -> NodePath:
    """A potted plant to soften the corners."""
    root = NodePath(name)
    _put(root, cylinder("pot", 0.28, 0.5, (0.85, 0.84, 0.80, 1), top_radius=0.34), (0, 0, 0))
    for i, (x, y, z, r) in enumerate(((0, 0, 0.9, 0.38), (0.18, 0.1, 1.25, 0.3),
                                      (-0.16, -0.08, 1.3, 0.28), (0.02, 0.05, 1.6, 0.24))):
        leaf = (0.18 + 0.04 * i, 0.50 + 0.05 * i, 0.22, 1)
        _put(root, sphere("leaves", r, leaf, rings=6, segments=10), (x, y, z))
    return root
