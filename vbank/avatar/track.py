"""The avatar's video track: mouth from the audio being played, blinks and a gentle sway."""

from __future__ import annotations

import fractions
import math
import random
from collections.abc import Callable

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from vbank.avatar.face import FaceSprites
from vbank.media.pacing import VIDEO_CLOCK, Pacer

#: blink every few seconds, for a few frames
BLINK_EVERY_S = (2.5, 6.0)
BLINK_FRAMES = 2


class AvatarTrack(MediaStreamTrack):
    """Video of the digital teller; ``level()`` is the loudness of the audio now leaving."""

    kind = "video"

    def __init__(self, sprites: FaceSprites, level: Callable[[], float], fps: int = 12,
                 seed: int | None = None) -> None:
        super().__init__()
        self._sprites = sprites
        self._level = level
        self._fps = fps
        self._pacer = Pacer(fps, VIDEO_CLOCK)
        self._rng = random.Random(seed)
        self._n = 0
        self._next_blink = self._blink_gap()
        self._mouth = 0.0
        self.frames_sent = 0

    def _blink_gap(self) -> int:
        return self._n + int(self._rng.uniform(*BLINK_EVERY_S) * self._fps)

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        pts = await self._pacer.next()
        self._n += 1
        if self._n >= self._next_blink + BLINK_FRAMES:
            self._next_blink = self._blink_gap()
        eyes_open = not (self._next_blink <= self._n < self._next_blink + BLINK_FRAMES)
        # the mouth opens at once with the sound and closes a little slower, as lips do
        target = min(1.0, self._level() * 2.5)
        self._mouth = target if target > self._mouth else 0.6 * self._mouth + 0.4 * target
        sway = round(2 * math.sin(self._n / self._fps * 0.8))  # idle motion, in pixels
        planes = self._sprites.get(self._mouth, eyes_open, sway)
        frame = av.VideoFrame.from_ndarray(planes, format="yuv420p")
        frame.pts = pts
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        self.frames_sent += 1
        return frame
