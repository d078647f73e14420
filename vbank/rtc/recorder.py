"""Recording (双录) by passthrough: received VP8 and Opus go into WebM without decoding.

The file is written as it goes (small clusters, flushed per packet, "live" layout with no
sizes to patch at the end), so a killed process leaves a file that plays up to about a
second before the crash. The stock aiortc MediaRecorder was measured to drop video,
leak memory and stall the loop; this recorder does none of the encoding that caused it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections import deque
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from vbank.media.packets import MediaPacket, vp8_size

log = logging.getLogger(__name__)

#: muxer options: unknown-size segments, 1 s clusters, every packet flushed to the file
WEBM_OPTIONS = {"live": "1", "cluster_time_limit": "1000", "flush_packets": "1"}
#: audio kept while waiting for the first video keyframe
MAX_PENDING_AUDIO = 500
MS = Fraction(1, 1000)


@dataclass(frozen=True, slots=True)
class RecordingInfo:
    """A finished recording file and what it holds."""

    path: Path
    sha256: str
    bytes: int
    video_frames: int
    audio_frames: int
    started_at: float  # wall clock, seconds
    duration_s: float

    def as_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "sha256": self.sha256, "bytes": self.bytes,
                "video_frames": self.video_frames, "audio_frames": self.audio_frames,
                "started_at": self.started_at, "duration_s": self.duration_s}


class _Clock:
    """Maps one stream's RTP timestamps onto the recording's millisecond timeline."""

    def __init__(self) -> None:
        self.anchor_ms: float | None = None
        self.first_pts = 0
        self.last_ms = -1

    def ms(self, packet: MediaPacket, t0: float) -> int:
        if self.anchor_ms is None:
            # The first packet sits where it arrived; later ones follow their RTP spacing,
            # which keeps audio and video aligned without arrival jitter.
            self.anchor_ms = (packet.arrival - t0) * 1000.0
            self.first_pts = packet.pts
        ms = int(self.anchor_ms + (packet.pts - self.first_pts) * 1000 / packet.clock_rate)
        ms = max(ms, self.last_ms + 1)  # the muxer needs increasing timestamps
        self.last_ms = ms
        return ms


class LegRecorder:
    """Records what one participant sends: their audio and video, into one WebM file."""

    def __init__(self, path: Path, expect_video: bool) -> None:
        self.path = path
        self.expect_video = expect_video
        self.started_at = time.time()
        self._t0 = time.monotonic()
        self._container: Any = None  # opened at the first video keyframe (or audio, if no video)
        self._streams: dict[str, Any] = {}
        self._clocks = {"audio": _Clock(), "video": _Clock()}
        self._pending: deque[MediaPacket] = deque(maxlen=MAX_PENDING_AUDIO)
        self._counts = {"audio": 0, "video": 0}
        self._last_arrival = self._t0
        self.closed = False

    def write(self, packet: MediaPacket) -> None:
        """Mux one packet; called on the event loop, costs a small write syscall."""
        if self.closed:
            return
        if self._container is None and not self._open_for(packet):
            return
        stream = self._streams.get(packet.kind)
        if stream is None:
            return
        try:
            self._mux(stream, packet)
        except (av.FFmpegError, ValueError) as exc:  # a broken packet must not end the call
            log.warning("recording %s: dropped a %s packet: %s", self.path.name, packet.kind, exc)

    def _open_for(self, packet: MediaPacket) -> bool:
        """Open the file once its streams are known; False while the packet must wait."""
        if packet.kind == "audio" and self.expect_video:
            self._pending.append(packet)
            return False
        size = vp8_size(packet.data) if packet.kind == "video" and packet.keyframe else None
        if packet.kind == "video" and size is None:
            return False  # wait for a keyframe: nothing before it can be decoded
        self._open(size)
        return True

    def _open(self, size: tuple[int, int] | None) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._container = av.open(str(self.path), "w", format="webm", options=WEBM_OPTIONS)
        if size is not None:
            # width/height must be given here: set later, writing the header fails (EINVAL)
            self._streams["video"] = self._container.add_mux_stream(
                "vp8", rate=90000, width=size[0], height=size[1])
        self._streams["audio"] = self._container.add_mux_stream("opus", rate=48000)
        pending, self._pending = list(self._pending), deque()
        for p in pending:
            self._mux(self._streams["audio"], p)

    def _mux(self, stream: Any, packet: MediaPacket) -> None:
        ms = self._clocks[packet.kind].ms(packet, self._t0)
        out = av.Packet(packet.data)
        out.pts = out.dts = ms
        out.time_base = MS
        if packet.keyframe:
            out.is_keyframe = True
        out.stream = stream
        self._container.mux(out)
        self._counts[packet.kind] += 1
        self._last_arrival = max(self._last_arrival, packet.arrival)

    async def close(self) -> RecordingInfo | None:
        """Finish the file and hash it; None when nothing was ever received."""
        if self.closed:
            return None
        self.closed = True
        if self._container is None:
            if not self._pending:
                return None
            self._open(None)  # audio only arrived: keep it rather than lose the customer's words
        with contextlib.suppress(av.FFmpegError, ValueError):
            self._container.close()
        digest, size = await asyncio.to_thread(sha256_file, self.path)
        return RecordingInfo(self.path, digest, size, self._counts["video"],
                             self._counts["audio"], self.started_at,
                             self._last_arrival - self._t0)


def sha256_file(path: Path) -> tuple[str, int]:
    """SHA-256 and size of a file, read in chunks."""
    h = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size
