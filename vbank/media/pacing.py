"""The clock outbound tracks are paced by: the synthetic voice, the avatar's face and the
headless peers' tracks each send at a fixed rate with RTP-style timestamps."""

from __future__ import annotations

import asyncio
import time

#: RTP clock rate of video (RFC 3551): timestamps count 1/90000 s
VIDEO_CLOCK = 90000


class Pacer:
    """Wall-clock pacing at a fixed rate, with RTP-style timestamps."""

    def __init__(self, rate: float, clock: int) -> None:
        self.period = 1.0 / rate
        self.step = int(clock / rate)
        self._start: float | None = None
        self._n = 0

    async def next(self) -> int:
        if self._start is None:
            self._start = time.monotonic()
        else:
            self._n += 1
            delay = self._start + self._n * self.period - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        return self._n * self.step
