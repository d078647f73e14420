"""Echo cancellation in the 3D client, as tracks: what the speaker plays is the reference,
and the microphone is sent without it.

``SpeakerFeed`` sits between the far side's audio and the speaker: it passes every frame on
and hands a copy to the call's :class:`~vbank.speech.echo.EchoCanceller`.
``EchoFreeMicrophone`` wraps the microphone and sends the canceller's output instead (mono,
at the canceller's rate; the Opus encoder resamples). Both run on the network loop (the
recorder's task and the RTP sender's), so the canceller needs no lock; each stamps its
audio with ``time.monotonic()`` when it is handed over.
"""

from __future__ import annotations

import fractions
import logging
import time

import av
import numpy as np
from aiortc.mediastreams import MediaStreamTrack
from av.frame import Frame
from av.packet import Packet

from vbank.speech import SpeechError
from vbank.speech.audio import Pcm
from vbank.speech.echo import EchoCanceller

log = logging.getLogger(__name__)
_said_off = False  # the "echo cancellation is off" notice is logged once per process


def echo_canceller() -> EchoCanceller | None:
    """A canceller for one call, or None when libspeexdsp is missing (logged once)."""
    global _said_off
    try:
        return EchoCanceller()
    except SpeechError as exc:
        if not _said_off:
            _said_off = True
            log.warning("echo cancellation is off: %s. On loudspeakers the far side may hear "
                        "itself and stop talking.", exc)
        return None


class Mono:
    """Audio frames of any layout, format and rate as mono int16 at ``rate`` (stateful:
    one per stream, so no sample is lost or repeated between frames)."""

    def __init__(self, rate: int) -> None:
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)

    def __call__(self, frame: av.AudioFrame) -> Pcm:
        parts = [f.to_ndarray().reshape(-1) for f in self._resampler.resample(frame)]
        return np.concatenate(parts).astype(np.int16) if parts else np.zeros(0, np.int16)


class SpeakerFeed(MediaStreamTrack):
    """The far side's audio on its way to the speaker, noted as the echo's reference."""

    kind = "audio"

    def __init__(self, track: MediaStreamTrack, canceller: EchoCanceller) -> None:
        super().__init__()
        self._track = track
        self._canceller = canceller
        self._mono = Mono(canceller.rate)

    async def recv(self) -> Frame | Packet:
        item = await self._track.recv()
        if isinstance(item, av.AudioFrame):
            self._canceller.played(self._mono(item), time.monotonic())
        return item


class EchoFreeMicrophone(MediaStreamTrack):
    """The microphone without the speaker's echo."""

    kind = "audio"

    def __init__(self, microphone: MediaStreamTrack, canceller: EchoCanceller) -> None:
        super().__init__()
        self._microphone = microphone
        self._canceller = canceller
        self._mono = Mono(canceller.rate)
        self._sent = 0  # samples sent: the next frame's pts

    async def recv(self) -> av.AudioFrame:
        clean = np.zeros(0, np.int16)
        while not len(clean):  # a short period from the device may not complete a frame
            item = await self._microphone.recv()
            if isinstance(item, av.AudioFrame):
                clean = self._canceller.captured(self._mono(item), time.monotonic())
        out = av.AudioFrame.from_ndarray(clean[None, :], format="s16", layout="mono")
        out.sample_rate = self._canceller.rate
        out.time_base = fractions.Fraction(1, self._canceller.rate)
        out.pts = self._sent
        self._sent += len(clean)
        return out

    def stop(self) -> None:
        super().stop()
        self._microphone.stop()
