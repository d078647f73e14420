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


def test_one_hiccup_on_few_samples_refuses_nothing_until_enough_are_taken() -> None:
    async def run() -> tuple[bool, bool, bool]:
        lag = LoopLagMonitor(interval_s=0.02)
        lag.start()
        await asyncio.sleep(0.01)
        block(0.1)  # a start-up hiccup in the first sample
        await asyncio.sleep(0.03)
        early = lag.lags(50, min_samples=10), lag.lags(50, min_samples=1)
        await asyncio.sleep(0.4)  # more samples, all on time: the hiccup is under the p95
        later = lag.lags(50, min_samples=10)
        await lag.stop()
        return early[0], early[1], later

    judged_early, on_one_sample, judged_later = asyncio.run(run())
    assert on_one_sample  # the hiccup alone is the p95
    assert not judged_early and not judged_later
