"""The event-loop lag monitor: a stall shows in the percentiles; a reset forgets it, including
the sample the stall was in the middle of."""

from __future__ import annotations

import asyncio
import time

from vbank.rtc.lag import LoopLagMonitor


def block(seconds: float) -> None:
    """Hold the event loop's thread, as start-up work does."""
    time.sleep(seconds)


def test_a_stall_shows_and_a_reset_forgets_it_with_the_sample_in_flight() -> None:
    async def run() -> tuple[float, float]:
        lag = LoopLagMonitor(interval_s=0.02)
        lag.start()
        await asyncio.sleep(0.05)
        block(0.2)
        await asyncio.sleep(0.05)
        stalled = lag.p95_ms
        block(0.2)  # again, while the monitor's sleep is in flight
        lag.reset()
        await asyncio.sleep(0.15)
        after = lag.p95_ms
        await lag.stop()
        return stalled, after

    stalled, after = asyncio.run(run())
    assert stalled > 150
    assert after < 100  # the stall before the reset is not counted
