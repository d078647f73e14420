"""The digital teller's face, ready to send: every picture prepared once, at start-up.

The layers come from ``assets/avatar/`` (:mod:`vbank.avatar.art`). Every combination of
mouth opening, eye state and idle sway is composed, scaled and kept as YUV 4:2:0 planes; a
video frame is then only a lookup.
"""

from __future__ import annotations

import av
import numpy as np
from numpy.typing import NDArray

from vbank.avatar.art import ART_DIR, Art, load

Rgb = NDArray[np.uint8]


def compose(art: Art, mouth: int, eyes_open: bool) -> Rgb:
    """The base with one eye layer and one mouth layer laid over it (alpha blended)."""
    out = art.base[..., :3].astype(np.float32)
    for layer in (art.eyes[eyes_open], art.mouths[mouth]):
        alpha = layer[..., 3:].astype(np.float32) / 255.0
        out = out * (1 - alpha) + layer[..., :3].astype(np.float32) * alpha
    return np.asarray(out.round(), np.uint8)


def scaled(img: Rgb, width: int, height: int) -> Rgb:
    """``img`` resized with area averaging (the art is drawn larger than it is sent)."""
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
    return np.asarray(frame.reformat(width=width, height=height, interpolation="AREA")
                      .to_ndarray(), np.uint8)


def to_yuv420(img: Rgb) -> NDArray[np.uint8]:
    frame = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p")
    return np.asarray(frame.to_ndarray(), dtype=np.uint8)


#: vertical idle sway, in pixels either way (drawn ahead: YUV planes cannot be shifted as one)
SWAY_PX = 2


def shifted(img: Rgb, dy: int) -> Rgb:
    """The picture moved ``dy`` rows down, edge rows repeated into the gap."""
    if dy == 0:
        return img
    out = np.roll(img, dy, axis=0)
    if dy > 0:
        out[:dy] = img[0]
    else:
        out[dy:] = img[-1]
    return out


class FaceSprites:
    """All the faces the avatar can show, ready to send."""

    def __init__(self, width: int = 320, height: int = 240, art: Art | None = None) -> None:
        self.width, self.height = width, height
        art = art or load(ART_DIR)
        self.mouth_steps = len(art.mouths)
        faces = {(m, e): scaled(compose(art, m, e), width, height)
                 for m in range(self.mouth_steps) for e in (True, False)}
        self.frames = {(m, e, dy): to_yuv420(shifted(img, dy))
                       for (m, e), img in faces.items()
                       for dy in range(-SWAY_PX, SWAY_PX + 1)}

    def get(self, mouth: float, eyes_open: bool, sway: int = 0) -> NDArray[np.uint8]:
        last = self.mouth_steps - 1
        step = min(last, max(0, round(mouth * last)))
        return self.frames[(step, eyes_open, max(-SWAY_PX, min(SWAY_PX, sway)))]
