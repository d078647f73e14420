"""A headless WebRTC participant: synthetic camera and microphone, counted reception.

Used by the integration tests, the benchmarks and (later) the scenario runner to play a
customer or a teller without a browser. Video is pre-encoded VP8 sent as packets, so a
load generator spends its CPU on the protocol, not on encoding a test pattern.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import math
import time
from collections import deque
from typing import Any

import av
import numpy as np
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from vbank.media.pacing import VIDEO_CLOCK, Pacer
from vbank.media.packets import MediaPacket
from vbank.rtc.ice import rtc_configuration
from vbank.speech.audio import rms_dbfs


def encode_vp8_loop(width: int, height: int, fps: int, frames: int,
                    seed: int = 0) -> list[bytes]:
    """A loop of VP8 frames of a moving pattern; the first is a keyframe."""
    ctx = av.CodecContext.create("libvpx", "w")
    ctx.width, ctx.height, ctx.pix_fmt = width, height, "yuv420p"
    ctx.time_base = fractions.Fraction(1, fps)
    ctx.bit_rate = 600_000
    ctx.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    out: list[bytes] = []
    for i in range(frames):
        img = np.roll(base, i * 4, axis=1)
        frame = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p")
        frame.pts = i
        out += [bytes(p) for p in ctx.encode(frame)]
    out += [bytes(p) for p in ctx.encode(None)]
    return out


class PreEncodedVideoTrack(MediaStreamTrack):
    """Sends a looped list of VP8 frames at ``fps``; aiortc packs them without encoding."""

    kind = "video"

    def __init__(self, frames: list[bytes], fps: int = 15) -> None:
        super().__init__()
        self._frames = frames
        self._pacer = Pacer(fps, VIDEO_CLOCK)
        self._i = 0

    async def recv(self) -> av.Packet:
        if self.readyState != "live":
            raise MediaStreamError
        pts = await self._pacer.next()
        data = self._frames[self._i % len(self._frames)]
        self._i += 1
        packet = av.Packet(data)
        packet.pts = packet.dts = pts
        packet.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        return packet


def encode_opus(samples: np.ndarray) -> list[bytes]:
    """Opus packets (20 ms each) of mono 48 kHz int16 audio, encoded once to be looped."""
    ctx = av.CodecContext.create("libopus", "w")
    ctx.sample_rate, ctx.layout, ctx.format = 48000, "mono", "s16"
    ctx.time_base = fractions.Fraction(1, 48000)
    out: list[bytes] = []
    for i in range(samples.size // 960):
        frame = av.AudioFrame.from_ndarray(
            samples[i * 960:(i + 1) * 960].astype(np.int16).reshape(1, -1), format="s16",
            layout="mono")
        frame.sample_rate, frame.pts = 48000, i * 960
        out += [bytes(p) for p in ctx.encode(frame)]
    return out


def encode_opus_tone(seconds: float = 1.0, hz: float = 440.0) -> list[bytes]:
    """Opus packets of a quiet tone."""
    t = np.arange(int(seconds * 48000)) / 48000
    return encode_opus((3000 * np.sin(2 * math.pi * hz * t)).astype(np.int16))


class PreEncodedAudioTrack(MediaStreamTrack):
    """Sends looped Opus packets every 20 ms; aiortc packs them without encoding."""

    kind = "audio"

    def __init__(self, packets: list[bytes]) -> None:
        super().__init__()
        self._packets = packets
        self._pacer = Pacer(50, 48000)
        self._i = 0

    async def recv(self) -> av.Packet:
        if self.readyState != "live":
            raise MediaStreamError
        pts = await self._pacer.next()
        packet = av.Packet(self._packets[self._i % len(self._packets)])
        self._i += 1
        packet.pts = packet.dts = pts
        packet.time_base = fractions.Fraction(1, 48000)
        return packet


#: received audio kept for listening back (``Reception.audio_since``)
KEEP_AUDIO_S = 60


class Reception:
    """Counts what arrives on each remote track (decoded frames or passthrough packets)."""

    def __init__(self) -> None:
        #: (arrival time, mono int16 48 kHz) of decoded audio, the last minute of it
        self.audio: deque[tuple[float, np.ndarray]] = deque(maxlen=KEEP_AUDIO_S * 50)
        self.frames = {"audio": 0, "video": 0}
        self.first_at: dict[str, float] = {}
        self.last_at: dict[str, float] = {}
        self.video_size: tuple[int, int] | None = None
        self._tasks: list[asyncio.Task[None]] = []

    def consume(self, track: MediaStreamTrack) -> None:
        self._tasks.append(asyncio.ensure_future(self._run(track)))

    async def _run(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                item: Any = await track.recv()
                now = time.monotonic()
                self.frames[track.kind] += 1
                self.first_at.setdefault(track.kind, now)
                self.last_at[track.kind] = now
                if isinstance(item, av.VideoFrame):
                    self.video_size = (item.width, item.height)
                elif isinstance(item, av.AudioFrame):
                    samples = item.to_ndarray().reshape(-1)
                    if len(item.layout.channels) == 2:  # packed stereo: average the pair
                        samples = samples.reshape(-1, 2).mean(axis=1).astype(np.int16)
                    self.audio.append((now, samples))
                elif isinstance(item, MediaPacket) and item.kind == "video":
                    self.video_size = self.video_size or (0, 0)

    def first_loud_after(self, since: float, dbfs: float = -40.0) -> float | None:
        """Arrival time of the first frame after ``since`` louder than ``dbfs``, or None.
        Scans from the newest frame back, so only frames after ``since`` are measured."""
        found = None
        for at, pcm in reversed(self.audio):
            if at < since:
                break
            if rms_dbfs(pcm) > dbfs:
                found = at
        return found

    def audio_since(self, since: float) -> np.ndarray:
        """Mono 48 kHz audio received since ``since`` (a ``time.monotonic()`` value)."""
        parts = [pcm for at, pcm in self.audio if at >= since]
        return np.concatenate(parts) if parts else np.zeros(0, np.int16)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


_TONE: list[bytes] = []


def _tone() -> list[bytes]:
    if not _TONE:
        _TONE.extend(encode_opus_tone())
    return _TONE


class HeadlessPeer:
    """One participant's peer connection to the server, sending and receiving."""

    def __init__(self, video_frames: list[bytes] | None, fps: int = 15,
                 ice_servers: list[str] | None = None, audio: bool = True,
                 voice: MediaStreamTrack | None = None) -> None:
        self.pc = RTCPeerConnection(rtc_configuration(ice_servers or []))
        self.reception = Reception()
        self.pc.on("track", self.reception.consume)
        if voice is not None:
            self.pc.addTrack(voice)  # a speaking participant: silence until it says something
        elif audio:
            self.pc.addTrack(PreEncodedAudioTrack(_tone()))
        if video_frames is not None:
            self.pc.addTrack(PreEncodedVideoTrack(video_frames, fps))

    async def offer(self) -> str:
        """An offer with every ICE candidate in it (aiortc gathers before returning)."""
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return str(self.pc.localDescription.sdp)

    async def accept(self, answer_sdp: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer_sdp, type="answer"))

    async def wait_connected(self, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while self.pc.connectionState != "connected":
            if self.pc.connectionState in ("failed", "closed") or time.monotonic() > deadline:
                raise TimeoutError(f"peer connection is {self.pc.connectionState}")
            await asyncio.sleep(0.05)

    async def close(self) -> None:
        await self.reception.stop()
        await self.pc.close()
