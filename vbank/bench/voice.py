"""``vbank bench voice-latency``: end of the customer's speech → first reply audio heard.

A headless customer talks with the digital human over loopback WebRTC. For each turn it
notes when its last speech frame left, and when the first loud audio of the reply arrived.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from vbank.bench.queue import percentile
from vbank.bench.report import report

QUESTIONS = ["What are your opening hours?", "What are your fees?",
             "How long do I have to wait?"]
LOUD_DBFS = -40.0


async def _quiet_for(reception: Any, seconds: float, timeout: float = 60) -> None:
    """Wait until the digital human has said nothing for ``seconds``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        last_loud = _last_loud(reception)
        if last_loud is None or time.monotonic() - last_loud >= seconds:
            return
        await asyncio.sleep(0.1)


def _last_loud(reception: Any) -> float | None:
    from vbank.speech.audio import rms_dbfs

    for at, pcm in reversed(list(reception.audio)):
        if rms_dbfs(np.asarray(pcm, np.int16)) > LOUD_DBFS:
            return float(at)
    return None


async def run_turns(url: str, turns: int) -> list[float]:
    from vbank.headless import Participant
    from vbank.rtc.ice import restrict_host_addresses
    from vbank.rtc.peer import encode_vp8_loop
    from vbank.speech.tracks import SpeechTrack
    from vbank.speech.tts import PiperSynthesizer

    restrict_host_addresses(["127.0.0.1"])
    voice, mouth = PiperSynthesizer(), SpeechTrack()
    clips = [voice.synthesize(q) for q in QUESTIONS]
    c = Participant(url, "alice")
    await c.connect()
    await c.send({"type": "join", "service": "general_enquiry", "with": "digital_human"})
    session_id = (await c.expect("paired"))["session_id"]
    peer = await c.start_media(session_id, encode_vp8_loop(320, 240, 15, 15), voice=mouth)
    await c.expect("caption", speaker="digital_human", timeout=30)
    await _quiet_for(peer.reception, 1.5)
    latencies: list[float] = []
    for turn in range(turns):
        mouth.play(clips[turn % len(clips)])
        while mouth.queued_s > 0:  # noqa: ASYNC110 (polled at the frame rate)
            await asyncio.sleep(0.005)
        spoken_end = time.monotonic()  # the last frame of the question has just left
        deadline = spoken_end + 15
        heard = None
        while heard is None and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
            heard = peer.reception.first_loud_after(spoken_end, LOUD_DBFS)
        if heard is not None:
            latencies.append(heard - spoken_end)
        await _quiet_for(peer.reception, 1.5)
    await c.close()
    mouth.stop()
    return latencies


def main(argv: list[str], json_out: Path | None) -> int:
    import os
    import signal
    import subprocess
    import sys

    parser = argparse.ArgumentParser(prog="vbank bench voice-latency")
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--server", help="a running server (default: start one)")
    args = parser.parse_args(argv)
    server = None
    url = args.server
    if url is None:
        from vbank.bench.sessions import _free_port

        port = _free_port()
        data = tempfile.mkdtemp(prefix="vbank-voice-")
        env = {**os.environ, "VBANK_DIGITAL_HUMAN": "true", "VBANK_MEDIA_WORKERS": "1"}
        server = subprocess.Popen(
            [sys.executable, "-m", "vbank", "serve", "--port", str(port), "--data", data,
             "--demo"], stdout=subprocess.PIPE, text=True, env=env, start_new_session=True)
        assert server.stdout is not None
        for line in server.stdout:
            if "vbank ready" in line:
                break
        url = f"http://127.0.0.1:{port}"
    try:
        latencies = asyncio.run(run_turns(url, args.turns))
    finally:
        if server is not None:
            server.send_signal(signal.SIGTERM)
            server.wait(30)
    ms = [x * 1000 for x in latencies]
    report("voice-latency", {
        "turns": args.turns, "answered": len(ms),
        "p50_ms": round(statistics.median(ms), 1) if ms else None,
        "p95_ms": round(percentile(ms, 0.95), 1) if ms else None,
        "min_ms": round(min(ms), 1) if ms else None,
        "measures": "end of customer speech (last frame sent) to first reply audio received",
    }, json_out)
    return 0 if ms else 1
