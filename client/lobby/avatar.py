"""People in the hall, built from primitives: the player, other customers, tellers.

An avatar's origin is between its feet and it faces +y at heading 0 (like targets). A name
tag, when given, floats above the head and turns about the vertical axis to face the camera
(``setBillboardAxis``: the one billboard mode whose text both renderers draw).
"""

from __future__ import annotations

from panda3d.core import NodePath

from client.lobby.labels import text_node
from client.lobby.shapes import box, cylinder, sphere

Color = tuple[float, float, float, float]

SKIN: tuple[Color, ...] = ((0.96, 0.80, 0.66, 1), (0.85, 0.66, 0.50, 1), (0.60, 0.43, 0.30, 1))
HAIR: tuple[Color, ...] = ((0.12, 0.09, 0.07, 1), (0.35, 0.22, 0.12, 1), (0.55, 0.55, 0.55, 1))
TROUSERS = (0.18, 0.20, 0.28, 1)
HEIGHT = 1.75


def build_avatar(name: str, shirt: Color, *, skin: int = 0, hair: int = 0,
                 tag: str | None = None) -> NodePath:
    """A standing person about 1.75 m tall; ``tag`` puts a name tag above the head."""
    root = NodePath(name)
    body = root.attachNewNode("body")  # what turns and bobs, leaving the tag upright
    for side in (-1, 1):
        leg = cylinder("leg", 0.085, 0.82, TROUSERS, segments=6)
        leg.reparentTo(body)
        leg.setPos(side * 0.11, 0, 0)
        shoe = box("shoe", (0.13, 0.26, 0.08), (0.1, 0.08, 0.07, 1))
        shoe.reparentTo(body)
        shoe.setPos(side * 0.11, 0.05, 0)
        arm = cylinder("arm", 0.06, 0.62, shirt, segments=6, top_radius=0.07)
        arm.reparentTo(body)
        arm.setPos(side * 0.27, 0, 0.78)
        arm.setR(side * 8)
        hand = sphere("hand", 0.06, SKIN[skin % len(SKIN)], rings=4, segments=6)
        hand.reparentTo(body)
        hand.setPos(side * 0.28, 0, 0.76)
    torso = cylinder("torso", 0.2, 0.62, shirt, segments=12, top_radius=0.25)
    torso.reparentTo(body)
    torso.setPos(0, 0, 0.8)
    neck = cylinder("neck", 0.06, 0.1, SKIN[skin % len(SKIN)], segments=6)
    neck.reparentTo(body)
    neck.setPos(0, 0, 1.42)
    head = sphere("head", 0.14, SKIN[skin % len(SKIN)])
    head.reparentTo(body)
    head.setPos(0, 0, 1.6)
    head.setScale(1, 1.05, 1.12)
    hair_cap = sphere("hair", 0.147, HAIR[hair % len(HAIR)], rings=6, segments=12)
    hair_cap.reparentTo(body)
    hair_cap.setPos(0, -0.03, 1.66)
    hair_cap.setScale(1.02, 0.95, 0.85)
    body.flattenStrong()  # one geom per avatar: fifty of them stay cheap to draw
    if tag:
        label = root.attachNewNode(text_node("tag", tag, (1, 1, 1, 1)))
        label.node().setCardColor(0.1, 0.15, 0.25, 0.75)
        label.node().setCardAsMargin(0.3, 0.3, 0.15, 0.1)
        label.node().setCardDecal(True)
        label.setScale(0.2)
        label.setPos(0, 0, HEIGHT + 0.2)
        label.setBillboardAxis()
        label.setLightOff()
    return root


def name_tag(avatar: NodePath) -> str | None:
    """The text of an avatar's name tag, if it has one."""
    tag = avatar.find("tag")
    return None if tag.isEmpty() else str(tag.node().getText())
