"""Bilingual signs and name tags: TextNodes in a font that has Chinese glyphs.

The CJK font is Debian's ``fonts-wqy-microhei`` (the Makefile installs it). Without it the
labels fall back to Panda's built-in Latin font, with one warning, and Chinese shows as boxes.
"""

from __future__ import annotations

import logging
from functools import cache
from pathlib import Path

from panda3d.core import FontPool, NodePath, TextFont, TextNode

from vbank.domain.flows import Text

log = logging.getLogger(__name__)

CJK_FONT = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
#: glyph resolution: high enough that a sign read from across the hall stays sharp
PIXELS_PER_UNIT = 48

Color = tuple[float, float, float, float]


@cache
def label_font(path: Path = CJK_FONT) -> TextFont:
    """The font every label uses (loaded once)."""
    font = FontPool.loadFont(str(path)) if path.exists() else None
    if font is None or not font.isValid():
        log.warning("no CJK font at %s (apt-get install fonts-wqy-microhei); "
                    "Chinese labels will not render", path)
        return TextNode.getDefaultFont()
    font.setPixelsPerUnit(PIXELS_PER_UNIT)
    return font


def text_node(name: str, text: str, color: Color, align: int = TextNode.ACenter) -> TextNode:
    node = TextNode(name)
    node.setFont(label_font())
    node.setText(text)
    node.setTextColor(*color)
    node.setAlign(align)
    return node


def sign(parent: NodePath, name: str, text: Text, *, max_width: float, height: float,
         color: Color = (1, 1, 1, 1), card: Color | None = None) -> NodePath:
    """English above Chinese, centred, facing -y, scaled so that it fits ``max_width`` and
    each line is ``height`` tall; with ``card`` a plate behind the text."""
    node = text_node(name, f"{text.en}\n{text.zh}", color)
    if card is not None:
        node.setCardColor(*card)
        node.setCardAsMargin(0.5, 0.5, 0.25, 0.15)
        node.setCardDecal(True)
    path = parent.attachNewNode(node)
    width = max(node.getWidth(), 1e-3)
    path.setScale(min(height, max_width / width))
    path.setLightOff()  # signs glow evenly whatever the lights around them
    path.setDepthOffset(1)  # never z-fight with the surface they are mounted on
    return path
