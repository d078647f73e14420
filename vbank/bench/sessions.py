"""``vbank bench sessions``: how many recorded calls stay real time.

``--kind teller`` (default): for each load N, a fresh ``vbank serve`` (media workers per
core), then load generator processes play N customers and N tellers, each sending
pre-encoded 640x480 VP8 at 15 fps plus Opus, through the real signaling and media path,
with recording. A session is real time when both directions deliver at least 95% of the
frames sent.

``--kind digital_human``: N customers each talk with their own digital human: every
customer asks a spoken question (pre-encoded Opus of synthesized speech) every few
seconds, so every session runs turn detection, ASR, intents, TTS, the avatar's VP8 encoder
and recording. Real time: the customer receives at least 95% of the avatar's frames and of
its audio frames.

The generators run on the same machine and share its cores, as the notes warn: figures
are a lower bound.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

from vbank.bench.report import report

FPS = 15
AVATAR_FPS = 12
ON_TIME = 0.95
#: what each digital-human customer says, then the silence before saying it again
QUESTION = "What are your opening hours?"
QUESTION_EVERY_S = 9.0


def _add_users(data: Path, count: int) -> None:
    from vbank.auth import hash_password
    from vbank.config import Settings
    from vbank.store import repo
    from vbank.store.db import make_engine, sessionmaker, upgrade

    settings = Settings(data=data)
    upgrade(settings.database_url)
    password = hash_password("bench")

    async def add() -> None:
        engine = make_engine(settings.database_url)
        async with sessionmaker(engine).begin() as db:
            for i in range(count):
                await repo.add_user(db, f"bc{i}", password, "customer")
                await repo.add_user(db, f"bt{i}", password, "teller", skills=["loan_signing"])
        await engine.dispose()

    asyncio.run(add())


def _question_loop() -> list[bytes]:
    import numpy as np

    from vbank.rtc.peer import encode_opus
    from vbank.speech.tts import PiperSynthesizer

    speech = PiperSynthesizer().synthesize(QUESTION)
    pause = np.zeros(int(48000 * QUESTION_EVERY_S) - speech.size, np.int16)
    return encode_opus(np.concatenate([speech, pause]))


async def _generate_agent(url: str, first: int, count: int,
                          duration: float) -> list[dict[str, Any]]:
    """Play ``count`` customers talking with the digital human."""
    from vbank.headless import Participant
    from vbank.rtc.peer import PreEncodedAudioTrack, encode_vp8_loop

    video = encode_vp8_loop(640, 480, FPS, 45)
    question = _question_loop()
    customers = []
    for i in range(first, first + count):
        c = Participant(url, f"bc{i}", "bench")
        await c.connect()
        await c.send({"type": "join", "service": "general_enquiry", "with": "digital_human"})
        session_id = (await c.expect("paired", timeout=30))["session_id"]
        await c.start_media(session_id, video, voice=PreEncodedAudioTrack(question))
        customers.append(c)
    await asyncio.sleep(3)  # warm-up (the greeting), not counted
    before = [c.peer.reception.frames.copy() for c in customers]  # type: ignore[union-attr]
    answers_before = [_answers(c) for c in customers]
    await asyncio.sleep(duration)
    results = []
    for c, b, a in zip(customers, before, answers_before, strict=True):
        f = c.peer.reception.frames  # type: ignore[union-attr]
        results.append({"to_customer_video_fps": (f["video"] - b["video"]) / duration,
                        "to_customer_audio_fps": (f["audio"] - b["audio"]) / duration,
                        "answers": _answers(c) - a})
    for c in customers:
        await c.send({"type": "leave"})
    await asyncio.sleep(1)
    for c in customers:
        await c.close()
    return results


def _answers(c: Any) -> int:
    """Answers about opening hours the digital human began (captions as audio starts)."""
    return sum(1 for m in c.messages if m.get("type") == "caption"
               and m.get("speaker") == "digital_human" and "open every day" in m.get("text", ""))


async def _generate(url: str, first: int, count: int, duration: float) -> list[dict[str, Any]]:
    """Play ``count`` customer/teller pairs; returns per-session delivered frame rates."""
    from vbank.headless import Participant
    from vbank.rtc.peer import encode_vp8_loop

    video = encode_vp8_loop(640, 480, FPS, 45)
    pairs = []
    for i in range(first, first + count):
        c, t = Participant(url, f"bc{i}", "bench"), Participant(url, f"bt{i}", "bench")
        await c.connect()
        await t.connect()
        await t.send({"type": "status", "status": "available"})
        await t.expect("teller", status="available")
        await c.send({"type": "join", "service": "loan_signing"})
        session_id = (await c.expect("queued"))["session_id"]
        await t.send({"type": "accept"})
        paired = await t.expect("paired", timeout=30)
        if paired["session_id"] != session_id:
            raise RuntimeError("paired with another generator's customer")
        await asyncio.gather(c.start_media(session_id, video), t.start_media(session_id, video))
        pairs.append((c, t))
    await asyncio.sleep(2)  # warm-up, not counted
    before = [(c.peer.reception.frames.copy(), t.peer.reception.frames.copy())  # type: ignore[union-attr]
              for c, t in pairs]
    await asyncio.sleep(duration)
    results = []
    for (c, t), (cb, tb) in zip(pairs, before, strict=True):
        cf, tf = c.peer.reception.frames, t.peer.reception.frames  # type: ignore[union-attr]
        results.append({
            "to_customer_video_fps": (cf["video"] - cb["video"]) / duration,
            "to_teller_video_fps": (tf["video"] - tb["video"]) / duration,
            "to_customer_audio_fps": (cf["audio"] - cb["audio"]) / duration,
            "to_teller_audio_fps": (tf["audio"] - tb["audio"]) / duration,
        })
    for _, t in pairs:
        await t.send({"type": "end", "outcome": "completed"})
    await asyncio.sleep(1)
    for c, t in pairs:
        await c.close()
        await t.close()
    return results


def _cpu_of_tree(proc: psutil.Process) -> float:
    total = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            times = p.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def _lags(url: str) -> dict[str, float]:
    text = httpx.get(f"{url}/metrics", timeout=5).text
    out = {}
    for line in text.splitlines():
        if line.startswith("vbank_event_loop_lag_seconds{"):
            name = line.split('process="')[1].split('"')[0]
            out[name] = round(float(line.rsplit(" ", 1)[1]) * 1000, 1)
    return out


def measure(n: int, duration: float, workers: int, generators: int,
            kind: str = "teller") -> dict[str, Any]:
    """One load level: server up, generators run, figures collected, server down."""
    agent = kind == "digital_human"
    data = Path(tempfile.mkdtemp(prefix="vbank-bench-"))
    _add_users(data, n)
    port = _free_port()
    env = {**os.environ, "VBANK_MEDIA_WORKERS": str(workers),
           "VBANK_DIGITAL_HUMAN": "true" if agent else "false",
           "VBANK_MAX_SESSIONS_PER_WORKER": str(n), "VBANK_ADMISSION_MAX_LAG_MS": "100000"}
    server = subprocess.Popen(
        [sys.executable, "-m", "vbank", "serve", "--port", str(port), "--data", str(data),
         "--demo"], stdout=subprocess.PIPE, text=True, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        assert server.stdout is not None
        for line in server.stdout:
            if "vbank ready" in line:
                break
        tree = psutil.Process(server.pid)
        share = [n // generators + (1 if g < n % generators else 0) for g in range(generators)]
        gens = []
        first = 0
        for count in share:
            if count:
                gens.append(subprocess.Popen(
                    [sys.executable, "-m", "vbank.bench.sessions", "--generate", url,
                     str(first), str(count), str(duration), kind], stdout=subprocess.PIPE,
                    text=True))
            first += count
        # sample CPU and lag in the middle of the measured window
        time.sleep(4 + 0.5 * n)
        cpu0, t0 = _cpu_of_tree(tree), time.monotonic()
        time.sleep(min(duration / 2, 8))
        cpu = (_cpu_of_tree(tree) - cpu0) / (time.monotonic() - t0) * 100
        lags = _lags(url)
        sessions: list[dict[str, Any]] = []
        for g in gens:
            out, _ = g.communicate(timeout=duration + 120)
            sessions += json.loads(out.strip().splitlines()[-1])
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
    video = [min(s["to_customer_video_fps"], s.get("to_teller_video_fps", 1e9))
             for s in sessions]
    audio = [min(s["to_customer_audio_fps"], s.get("to_teller_audio_fps", 1e9))
             for s in sessions]
    fps = AVATAR_FPS if agent else FPS
    realtime = all(v >= ON_TIME * fps for v in video) and all(a >= ON_TIME * 50 for a in audio)
    extra = {"answers_per_session_min": min((s["answers"] for s in sessions), default=0)} \
        if agent else {}
    return {"sessions": n, "realtime": realtime and len(sessions) == n, **extra,
            "video_fps_min": round(min(video, default=0), 2),
            "video_fps_mean": round(sum(video) / max(1, len(video)), 2),
            "audio_fps_min": round(min(audio, default=0), 2),
            "server_cpu_percent": round(cpu, 1), "loop_lag_p95_ms": lags}


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main(argv: list[str], json_out: Path | None) -> int:
    parser = argparse.ArgumentParser(prog="vbank bench sessions")
    parser.add_argument("--sessions", default="2,4,6,8", help="load levels to try")
    parser.add_argument("--duration", type=float, default=15.0, help="seconds measured")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--generators", type=int, default=2,
                        help="load generator processes (they share this machine's cores)")
    parser.add_argument("--kind", choices=("teller", "digital_human"), default="teller",
                        help="customer-teller calls, or customers with the digital human")
    args = parser.parse_args(argv)
    levels = []
    for n in (int(x) for x in args.sessions.split(",")):
        result = measure(n, args.duration, args.workers, args.generators, args.kind)
        print(json.dumps(result), file=sys.stderr, flush=True)
        levels.append(result)
    best = max((lv["sessions"] for lv in levels if lv["realtime"]), default=0)
    what = ("customers speak a question every 9 s to their own digital human (ASR, intents, "
            "TTS, 320x240 avatar VP8 at 12 fps, recording)" if args.kind == "digital_human"
            else "640x480 VP8 15 fps both ways, passthrough recording")
    report("sessions", {"kind": args.kind, "video": what,
                        "media_workers": args.workers, "cpu_count": os.cpu_count(),
                        "max_realtime_sessions": best, "levels": levels}, json_out)
    return 0


async def _generator(url: str, first: int, count: int, duration: float,
                     kind: str) -> list[dict[str, Any]]:
    from vbank.media.packets import install_passthrough
    from vbank.rtc.ice import restrict_host_addresses

    install_passthrough()  # count received packets instead of decoding them
    restrict_host_addresses(["127.0.0.1"])
    play = _generate_agent if kind == "digital_human" else _generate
    return await play(url, first, count, duration)


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "--generate":
    _url, _first, _count, _duration, _kind = sys.argv[2:7]
    print(json.dumps(asyncio.run(_generator(_url, int(_first), int(_count), float(_duration),
                                            _kind))))
