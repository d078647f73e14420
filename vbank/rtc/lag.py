"""Event-loop lag: how late a timer fires, the health signal for real-time media."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque


class LoopLagMonitor:
    """Samples how late a short sleep wakes up; keeps a window for percentiles."""

    def __init__(self, interval_s: float = 0.1, window: int = 100) -> None:
        self.interval_s = interval_s
        self._samples: deque[float] = deque(maxlen=window)
        self._task: asyncio.Task[None] | None = None
        self._since = 0.0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            start = time.perf_counter()
            await asyncio.sleep(self.interval_s)
            if start >= self._since:  # a sample that began before a reset is not kept
                self._samples.append(max(0.0, time.perf_counter() - start - self.interval_s))

    def reset(self) -> None:
        """Forget the samples so far, and the one being taken (a server's start-up is not a
        sign of overload)."""
        self._samples.clear()
        self._since = time.perf_counter()

    def percentile_ms(self, q: float) -> float:
        """The q-th quantile (0..1) of recent lag, in milliseconds; 0 before any sample."""
        if not self._samples:
            return 0.0
        ordered = sorted(self._samples)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000.0

    @property
    def p95_ms(self) -> float:
        return self.percentile_ms(0.95)

    def lags(self, limit_ms: float, min_samples: int = 1) -> bool:
        """Whether the p95 lag is over ``limit_ms``, judged on at least ``min_samples``
        samples (False on fewer)."""
        return len(self._samples) >= min_samples and self.p95_ms > limit_ms

    @property
    def last_ms(self) -> float:
        return self._samples[-1] * 1000.0 if self._samples else 0.0
