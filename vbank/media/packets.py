"""Encoded media as it moves through the server: received, relayed and recorded undecoded.

aiortc's receiver normally decodes every frame in a worker thread. We replace its decoder
with one that hands over the depayloaded frame untouched (VP8 or Opus), so the server
never decodes or re-encodes a call's media: relaying and recording then cost only the
per-packet work, which is what lets one process carry several calls (see
shared/notes/rtc-measurements.md: VP8 encode alone is 3.5 ms per 640x480 frame).
"""

from __future__ import annotations

import asyncio
import math
import queue
import threading
import time
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import aiortc.rtcrtpreceiver
import aiortc.rtp
import av
import numpy as np


@dataclass(frozen=True, slots=True)
class MediaPacket:
    """One encoded frame: a whole VP8 picture or one Opus packet."""

    kind: str  # "audio" | "video"
    codec: str  # "vp8" | "opus"
    data: bytes
    #: RTP timestamp, unwrapped and counted from the stream's first packet
    pts: int
    clock_rate: int
    #: a VP8 frame that can be decoded on its own
    keyframe: bool
    #: ``time.monotonic()`` when the frame was complete at the server
    arrival: float

    def to_av(self, pts: int | None = None) -> av.Packet:
        """An ``av.Packet`` for aiortc's sender (``pack``) or for a muxer."""
        packet = av.Packet(self.data)
        packet.pts = packet.dts = self.pts if pts is None else pts
        packet.time_base = Fraction(1, self.clock_rate)
        if self.keyframe:
            packet.is_keyframe = True
        return packet


def vp8_size(frame: bytes) -> tuple[int, int] | None:
    """Width and height from a VP8 keyframe header (RFC 6386 §9.1), or None."""
    if len(frame) < 10 or frame[0] & 1 or frame[3:6] != b"\x9d\x01\x2a":
        return None
    width = int.from_bytes(frame[6:8], "little") & 0x3FFF
    height = int.from_bytes(frame[8:10], "little") & 0x3FFF
    return width, height


class PassthroughDecoder:
    """Stands in for aiortc's decoder: returns the encoded frame as a ``MediaPacket``."""

    def __init__(self, kind: str, codec: str, clock_rate: int) -> None:
        self.kind = kind
        self.codec = codec
        self.clock_rate = clock_rate

    def decode(self, encoded_frame: Any) -> list[MediaPacket]:
        data = bytes(encoded_frame.data)
        keyframe = self.kind == "video" and bool(data) and not data[0] & 1
        return [MediaPacket(self.kind, self.codec, data, int(encoded_frame.timestamp),
                            self.clock_rate, keyframe, time.monotonic())]


SUPPORTED = {"video/vp8": ("video", "vp8"), "audio/opus": ("audio", "opus")}


def _passthrough_get_decoder(codec: Any) -> PassthroughDecoder:
    kind_codec = SUPPORTED.get(codec.mimeType.lower())
    if kind_codec is None:
        # Only VP8 and Opus are negotiated (see ``call.prefer_codecs``); anything else is a bug.
        raise ValueError(f"no passthrough for {codec.mimeType}")
    return PassthroughDecoder(kind_codec[0], kind_codec[1], int(codec.clockRate))


def _passthrough_worker(loop: asyncio.AbstractEventLoop, input_q: queue.Queue[Any],
                        output_q: asyncio.Queue[Any], decode_error: threading.Event) -> None:
    """Replaces aiortc's ``decoder_worker`` thread body.

    aiortc hands every frame back to the loop with ``run_coroutine_threadsafe`` (a task per
    frame); with nothing to decode, a plain ``call_soon_threadsafe`` does the same job for
    a fraction of the cost, which matters at ~65 frames/s per participant.
    """
    decoders: dict[str, PassthroughDecoder] = {}
    while True:
        task = input_q.get()
        if task is None:
            loop.call_soon_threadsafe(output_q.put_nowait, None)
            return
        codec, encoded_frame = task
        try:
            decoder = decoders.get(codec.name) or decoders.setdefault(
                codec.name, _passthrough_get_decoder(codec))
        except ValueError:
            decode_error.set()
            continue
        for packet in decoder.decode(encoded_frame):
            loop.call_soon_threadsafe(output_q.put_nowait, packet)


#: aiortc's own (pure Python) audio level, kept as the reference the tests compare with
AIORTC_AUDIO_LEVEL = aiortc.rtp.compute_audio_level_dbov


def audio_level_dbov(frame: av.AudioFrame) -> int:
    """RFC 6465 Appendix A audio level of an s16 frame (0 loudest, -127 silence), as
    aiortc's ``compute_audio_level_dbov`` computes it, with numpy instead of a Python loop
    over every sample (that loop cost about 1% of a core per audio track sent)."""
    samples = np.frombuffer(bytes(frame.planes[0]), np.int16).astype(np.float64)
    if frame.samples == 0:
        return -127
    rms = math.sqrt(float(np.dot(samples, samples)) / (frame.samples * 32767.0 * 32767.0))
    if rms <= 0:
        return -127
    return round(min(0.0, max(-127.0, 20 * math.log10(rms))))


#: aiortc's own decoding, put back by ``uninstall_passthrough``
_DECODING = (aiortc.rtcrtpreceiver.get_decoder, aiortc.rtcrtpreceiver.decoder_worker,
             aiortc.rtp.compute_audio_level_dbov)


def uninstall_passthrough() -> None:
    """Give this process's receivers their decoders back (after in-process media stops, so
    that other aiortc peers in the process — a test's, a 3D client's — decode again)."""
    (aiortc.rtcrtpreceiver.get_decoder, aiortc.rtcrtpreceiver.decoder_worker,
     aiortc.rtp.compute_audio_level_dbov) = _DECODING


def install_passthrough() -> None:
    """Make every aiortc receiver in this process hand over encoded frames (and senders
    compute audio levels with numpy)."""
    aiortc.rtcrtpreceiver.get_decoder = _passthrough_get_decoder  # type: ignore[assignment]
    aiortc.rtcrtpreceiver.decoder_worker = _passthrough_worker
    aiortc.rtp.compute_audio_level_dbov = audio_level_dbov
