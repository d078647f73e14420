"""An identity snapshot: one picture from a participant's video, kept as JPEG, faces counted.

Media is relayed undecoded, so a picture has to be made on demand: subscribe to the leg's
incoming video beside the relay and the recorder, ask the sender for a keyframe (RTCP
PLI), decode from that keyframe with PyAV until a picture comes out, save it and count the
frontal faces in it with OpenCV's bundled Haar cascade. Decoding and detection run in a
thread; the event loop only queues packets, as the recorder does.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
from numpy.typing import NDArray

from vbank.media.packets import MediaPacket
from vbank.media.relay import Fanout, Item
from vbank.rtc import RtcError

#: how long to wait for a decodable picture before giving up
SNAPSHOT_TIMEOUT_S = 5.0
#: keyframe requests are repeated this often while waiting (a lost PLI, a slow sender)
KEYFRAME_RETRY_S = 1.0
#: packets held for the decoder; a picture comes from the first keyframe, so few are needed
SNAPSHOT_QUEUE = 32
JPEG_QUALITY = 90
#: the smallest face counted, as a share of the picture's shorter side: a face in front of a
#: webcam is far larger, while the photo on an ID card held up beside it is not counted
MIN_FACE_SHARE = 0.12
CASCADE = "haarcascade_frontalface_default.xml"

Bgr = NDArray[np.uint8]


class NoVideo(RtcError):
    """No picture could be had from the participant's video."""

    code = "no_video"


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A saved picture and what was found in it."""

    path: Path
    sha256: str
    bytes: int
    faces: int
    width: int
    height: int

    def as_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "sha256": self.sha256, "bytes": self.bytes,
                "faces": self.faces, "width": self.width, "height": self.height}


class FaceDetector:
    """OpenCV's frontal-face Haar cascade, loaded once per process (about 50 ms)."""

    _instance: FaceDetector | None = None
    _lock = threading.Lock()

    def __init__(self) -> None:
        import cv2  # only processes that take snapshots pay for OpenCV
        import cv2.data

        if not hasattr(cv2, "CascadeClassifier"):  # OpenCV 5 moved it to the contrib build
            raise RuntimeError(f"OpenCV {cv2.__version__} has no CascadeClassifier; "
                               "install opencv-python-headless<5")
        # One thread: detection takes about 50 ms either way, and a second OpenCV thread
        # would compete with this process's event loop, which is relaying calls.
        cv2.setNumThreads(1)
        self._cv2 = cv2
        self._cascade = cv2.CascadeClassifier(str(Path(cv2.data.haarcascades) / CASCADE))
        if self._cascade.empty():
            raise RuntimeError(f"cannot load {CASCADE} from {cv2.data.haarcascades}")
        # the cascade object is not safe to share between threads at once
        self._detect_lock = threading.Lock()

    @classmethod
    def shared(cls) -> FaceDetector:
        with cls._lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def count(self, picture: Bgr) -> int:
        """Frontal faces in a BGR picture."""
        cv2 = self._cv2
        grey = cv2.equalizeHist(cv2.cvtColor(picture, cv2.COLOR_BGR2GRAY))
        side = max(24, round(MIN_FACE_SHARE * min(grey.shape[:2])))
        with self._detect_lock:
            faces = self._cascade.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5,
                                                   minSize=(side, side))
        return len(faces)


def count_faces(picture: Bgr) -> int:
    """Frontal faces in a BGR picture, with the detector snapshots use."""
    return FaceDetector.shared().count(picture)


class _Decoder:
    """VP8 packets in, the first picture out; lives in the snapshot's thread."""

    def __init__(self) -> None:
        self._ctx = av.CodecContext.create("vp8", "r")

    def decode(self, data: bytes) -> Bgr | None:
        try:
            frames = self._ctx.decode(av.Packet(data))
        except av.FFmpegError:
            return None  # a damaged frame: the next ones may still decode
        if not frames:
            return None
        return np.asarray(frames[0].to_ndarray(format="bgr24"), np.uint8)


def _save(picture: Bgr, path: Path) -> Snapshot:
    import cv2

    ok, jpeg = cv2.imencode(".jpg", picture, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise RtcError("cannot encode the snapshot as JPEG")
    data = jpeg.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    height, width = picture.shape[:2]
    return Snapshot(path.resolve(), hashlib.sha256(data).hexdigest(), len(data),
                    count_faces(picture), width, height)


async def take_snapshot(video: Fanout, path: Path,
                        timeout: float = SNAPSHOT_TIMEOUT_S) -> Snapshot:
    """A picture from ``video`` (a leg's incoming video) saved as JPEG at ``path``.

    Raises ``NoVideo`` when no picture can be decoded within ``timeout`` seconds.
    """
    queue: asyncio.Queue[MediaPacket] = asyncio.Queue(SNAPSHOT_QUEUE)
    started = False

    def collect(item: Item, _source: int) -> None:
        nonlocal started
        if not isinstance(item, MediaPacket) or item.kind != "video":
            return
        started = started or item.keyframe  # nothing before a keyframe can be decoded
        if started and not queue.full():
            queue.put_nowait(item)

    deadline = time.monotonic() + timeout
    decoder = _Decoder()
    video.subscribe(collect)
    try:
        while True:
            if not started:
                video.request_keyframe()  # rate-limited by the fanout
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise NoVideo(f"no picture from the video within {timeout:g} s")
            with contextlib.suppress(TimeoutError):
                packet = await asyncio.wait_for(queue.get(), min(remaining, KEYFRAME_RETRY_S))
                picture = await asyncio.to_thread(decoder.decode, packet.data)
                if picture is not None:
                    break
    finally:
        video.unsubscribe(collect)
    return await asyncio.to_thread(_save, picture, path)
