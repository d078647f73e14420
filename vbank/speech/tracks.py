"""Speech at the media edge: decode what the customer says, play what the agent says.

``OpusDecoderTap`` turns the relayed Opus packets of a customer's track (the server never
decodes them for relaying) into 48 kHz mono PCM frames for the turn detector and ASR.
``SpeechTrack`` is the agent's outgoing audio: a queue of 20 ms frames, silence when empty,
``flush()`` for barge-in, and the time each piece of audio actually left (for captions
and the avatar's mouth).
"""

from __future__ import annotations

import asyncio
import fractions
import time
from collections import deque
from collections.abc import Callable

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from vbank.media.pacing import Pacer
from vbank.media.packets import MediaPacket
from vbank.speech.audio import FRAME_SAMPLES, RATE, Pcm, frames_of


class OpusDecoderTap:
    """Decodes Opus ``MediaPacket``s to mono int16 frames at 48 kHz."""

    def __init__(self) -> None:
        self._codec = av.CodecContext.create("opus", "r")
        self._codec.sample_rate = RATE
        self.decoded = 0

    def decode(self, packet: MediaPacket) -> list[Pcm]:
        out: list[Pcm] = []
        try:
            frames = self._codec.decode(av.Packet(packet.data))
        except av.FFmpegError:
            return out  # a damaged packet is a 20 ms gap, never an error for the call
        for frame in frames:
            samples = frame.to_ndarray()
            if samples.dtype != np.int16:  # planar float from the opus decoder
                samples = np.clip(samples * 32767.0, -32768, 32767).astype(np.int16)
            mono = samples.reshape(-1, samples.shape[-1]).mean(axis=0) if samples.ndim > 1 \
                and samples.shape[0] > 1 else samples.reshape(-1)
            out.append(mono.astype(np.int16))
            self.decoded += 1
        return out


class SpeechTrack(MediaStreamTrack):
    """The agent's voice: queued PCM out in paced 20 ms frames, silence in between."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._pacer = Pacer(50, RATE)
        self._frames: deque[tuple[Pcm, object | None, float]] = deque()
        self._silence = np.zeros(FRAME_SAMPLES, np.int16)
        #: called with (tag, wall time) when the first frame of a tagged clip leaves
        self.on_started: Callable[[object, float], None] | None = None
        #: the level (0..1) of the frame last sent, read by the avatar for the mouth
        self.level = 0.0
        self.playing = False

    def play(self, pcm: Pcm, tag: object | None = None) -> float:
        """Queue a clip; returns how many seconds of audio are now queued ahead of silence."""
        frames = frames_of(pcm)
        if frames:
            # each frame's level, for the avatar's mouth, computed once for the whole clip
            block = np.stack(frames).astype(np.float32)
            levels = np.sqrt(np.mean(block * block, axis=1)) / 8000.0
            for i, (frame, level) in enumerate(zip(frames, levels.tolist(), strict=True)):
                self._frames.append((frame, tag if i == 0 else None, level))
        return len(self._frames) * FRAME_SAMPLES / RATE

    def flush(self) -> int:
        """Drop everything not yet sent (barge-in); returns how many frames were dropped."""
        dropped = len(self._frames)
        self._frames.clear()
        return dropped

    @property
    def queued_s(self) -> float:
        return len(self._frames) * FRAME_SAMPLES / RATE

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        pts = await self._pacer.next()
        if self._frames:
            samples, tag, self.level = self._frames.popleft()
            self.playing = True
            if tag is not None and self.on_started is not None:
                self.on_started(tag, time.time())
        else:
            samples, self.playing, self.level = self._silence, False, 0.0
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RATE
        frame.pts = pts
        frame.time_base = fractions.Fraction(1, RATE)
        return frame


async def drain(track: SpeechTrack, timeout: float = 30.0) -> None:
    """Wait until everything queued has been sent (polled at the frame rate)."""
    deadline = time.monotonic() + timeout
    while track.queued_s > 0 and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.02)
