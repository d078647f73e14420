"""Draws the digital teller's face: a friendly cartoon teller in the bank's colours.

Every combination of mouth opening and eye state is drawn once, at start-up, and kept as
YUV 4:2:0 planes; a video frame is then only a lookup plus a small idle shift.
"""

from __future__ import annotations

import av
import numpy as np
from numpy.typing import NDArray

#: mouth openings drawn, from closed to wide open
MOUTH_STEPS = 6

Rgb = NDArray[np.uint8]


def _ellipse(h: int, w: int, cy: float, cx: float, ry: float, rx: float) -> NDArray[np.bool_]:
    y, x = np.ogrid[:h, :w]
    return ((y - cy) / max(ry, 0.5)) ** 2 + ((x - cx) / max(rx, 0.5)) ** 2 <= 1.0


def draw(width: int, height: int, mouth: float, eyes_open: bool) -> Rgb:
    """One face, ``mouth`` in 0..1."""
    h, w = height, width
    img = np.zeros((h, w, 3), np.uint8)
    ramp = np.linspace(0, 1, h)[:, None]
    img[:] = (np.stack([228 - 20 * ramp, 236 - 16 * ramp, 244 - 8 * ramp], -1)).astype(np.uint8)
    s = h / 240.0
    cx = w / 2
    img[_ellipse(h, w, h + 20 * s, cx, 90 * s, 130 * s)] = (12, 59, 94)  # navy jacket
    img[_ellipse(h, w, h - 10 * s, cx, 40 * s, 26 * s)] = (245, 245, 245)  # collar
    img[_ellipse(h, w, 205 * s, cx, 22 * s, 20 * s)] = (236, 196, 164)  # neck
    img[_ellipse(h, w, 110 * s, cx, 72 * s, 58 * s)] = (40, 30, 28)  # hair
    img[_ellipse(h, w, 122 * s, cx, 66 * s, 52 * s)] = (241, 204, 172)  # face
    img[_ellipse(h, w, 78 * s, cx, 26 * s, 56 * s) & (np.ogrid[:h, :w][0] < 86 * s)] = (40, 30, 28)
    for side in (-1, 1):
        ex = cx + side * 21 * s
        if eyes_open:
            img[_ellipse(h, w, 112 * s, ex, 7 * s, 6 * s)] = (255, 255, 255)
            img[_ellipse(h, w, 113 * s, ex, 4.5 * s, 4.5 * s)] = (50, 35, 25)
        else:
            img[_ellipse(h, w, 114 * s, ex, 1.2 * s, 7 * s)] = (90, 60, 50)
        img[_ellipse(h, w, 100 * s, ex, 1.5 * s, 9 * s)] = (60, 40, 30)  # brows
        img[_ellipse(h, w, 132 * s, cx + side * 34 * s, 6 * s, 9 * s)] = (240, 180, 160)  # cheeks
    img[_ellipse(h, w, 128 * s, cx, 7 * s, 3.5 * s)] = (225, 180, 150)  # nose
    open_ry = 1.5 + 9.0 * mouth
    img[_ellipse(h, w, 150 * s, cx, open_ry * s, 14 * s)] = (150, 50, 60)  # lips
    if mouth > 0.15:
        img[_ellipse(h, w, 150 * s, cx, (open_ry - 2.5) * s, 11 * s)] = (70, 20, 30)  # inside
    return img


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

    def __init__(self, width: int = 320, height: int = 240) -> None:
        self.width, self.height = width, height
        faces = {(m, e): draw(width, height, m / (MOUTH_STEPS - 1), e)
                 for m in range(MOUTH_STEPS) for e in (True, False)}
        self.frames = {(m, e, dy): to_yuv420(shifted(img, dy))
                       for (m, e), img in faces.items()
                       for dy in range(-SWAY_PX, SWAY_PX + 1)}

    def get(self, mouth: float, eyes_open: bool, sway: int = 0) -> NDArray[np.uint8]:
        step = min(MOUTH_STEPS - 1, max(0, round(mouth * (MOUTH_STEPS - 1))))
        return self.frames[(step, eyes_open, max(-SWAY_PX, min(SWAY_PX, sway)))]
