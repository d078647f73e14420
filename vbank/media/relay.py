"""Relaying encoded media from one participant's incoming track to the other's outgoing one.

``Fanout`` reads one received track and copies each packet to its subscribers (the other
participant's ``RelayTrack``, the recorder). ``RelayTrack`` is what aiortc sends: it can be
re-pointed at a new source when a teller is replaced, keeps its RTP timestamps continuous
across the switch, holds video back until a keyframe, and asks the source for one.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Callable
from typing import cast

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from vbank.media.packets import MediaPacket

log = logging.getLogger(__name__)

#: packets a subscriber may fall behind before the oldest are dropped (~2 s of video)
SUBSCRIBER_QUEUE = 64
#: keyframe requests to one source are spaced at least this far apart
KEYFRAME_REQUEST_INTERVAL_S = 0.5
#: nominal timestamp step used across a source switch: 20 ms of Opus, one 15 fps frame
NOMINAL_STEP = {"audio": 960, "video": 6000}

_ids = itertools.count(1)

Item = MediaPacket | av.AudioFrame | av.VideoFrame
Subscriber = Callable[[Item, int], None]


class Fanout:
    """One received track, read once, delivered to every subscriber."""

    def __init__(self, track: MediaStreamTrack,
                 request_keyframe: Callable[[], None] | None = None) -> None:
        self.kind = track.kind
        self.id = next(_ids)  # lets a RelayTrack notice that its source changed
        self._track = track
        self._subscribers: list[Subscriber] = []
        self._request_keyframe = request_keyframe
        self._last_request = 0.0
        self.packets = 0
        self._task = asyncio.ensure_future(self._run())

    def subscribe(self, fn: Subscriber) -> None:
        self._subscribers.append(fn)

    def unsubscribe(self, fn: Subscriber) -> None:
        with contextlib.suppress(ValueError):
            self._subscribers.remove(fn)

    def request_keyframe(self) -> None:
        """Ask the sender of this track for a keyframe (RTCP PLI), rate-limited."""
        now = time.monotonic()
        if self.kind != "video" or self._request_keyframe is None:
            return
        if now - self._last_request >= KEYFRAME_REQUEST_INTERVAL_S:
            self._last_request = now
            self._request_keyframe()

    async def _run(self) -> None:
        try:
            while True:
                packet = cast(Item, await self._track.recv())  # or a raw frame (avatar)
                self.packets += 1
                for fn in list(self._subscribers):
                    fn(packet, self.id)
        except MediaStreamError:
            pass

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._subscribers.clear()


class RelayTrack(MediaStreamTrack):
    """An outgoing track fed by whichever ``Fanout`` is attached; silent while none is."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self._queue: asyncio.Queue[tuple[Item, int]] = asyncio.Queue(SUBSCRIBER_QUEUE)
        self._source: Fanout | None = None
        self._last_source = 0
        self._last_in = 0
        self._last_out = 0
        self._started = False
        self._need_keyframe = kind == "video"
        self.sent = 0
        self.dropped = 0

    @property
    def source(self) -> Fanout | None:
        return self._source

    def attach(self, source: Fanout | None) -> None:
        """Relay ``source`` from now on (None: send nothing until a source is attached)."""
        if self._source is not None:
            self._source.unsubscribe(self._push)
        self._source = source
        if source is not None:
            source.subscribe(self._push)
            if self.kind == "video":
                self._need_keyframe = True
                source.request_keyframe()

    def request_keyframe(self) -> None:
        """The receiving peer lost the picture (PLI): pass the request upstream."""
        if self._source is not None:
            self._source.request_keyframe()

    def _push(self, packet: Item, source_id: int) -> None:
        if self.readyState != "live":
            return
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
            if self.kind == "video":
                self._need_keyframe = True  # a dropped video frame breaks the references
        self._queue.put_nowait((packet, source_id))

    async def recv(self) -> av.Packet | av.AudioFrame | av.VideoFrame:
        while True:
            if self.readyState != "live":
                raise MediaStreamError
            item, source_id = await self._queue.get()
            self.sent += 1
            if not isinstance(item, MediaPacket):
                # A raw frame from a server-side participant: aiortc encodes it (a fresh
                # encoder starts with a keyframe), we only keep the timeline continuous.
                self._need_keyframe = False
                clock = round(1 / item.time_base) if item.time_base else 48000
                item.pts = self._timestamp(int(item.pts or 0), clock, source_id)
                return item
            if self._need_keyframe:
                if not item.keyframe:
                    self.sent -= 1
                    self.request_keyframe()
                    continue
                self._need_keyframe = False
            return item.to_av(self._timestamp(item.pts, item.clock_rate, source_id))

    def _timestamp(self, pts: int, clock_rate: int, source_id: int) -> int:
        """Continue the outgoing timeline: the receiver must never see time jump back."""
        if not self._started:
            out = 0
            self._started = True
        elif source_id != self._last_source:
            out = self._last_out + NOMINAL_STEP[self.kind]
        else:
            delta = pts - self._last_in
            # a reset or a wild jump in the source's clock becomes one nominal step
            if delta <= 0 or delta > 10 * clock_rate:
                delta = NOMINAL_STEP[self.kind]
            out = self._last_out + delta
        self._last_source, self._last_in, self._last_out = source_id, pts, out
        return out

    def stop(self) -> None:
        self.attach(None)
        super().stop()
