"""Identity snapshots from a call's video, through a real media worker and real WebRTC peers.

The media pool runs one worker process (as the server does), so the snapshot goes through
the worker's JSON channel; the worker's passthrough patch stays out of this test process,
whose headless peers decode what they receive.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import cv2
import pytest

from vbank.avatar.idcard import id_camera_frames
from vbank.headless import Camera
from vbank.rtc import RtcError
from vbank.rtc.peer import HeadlessPeer
from vbank.rtc.worker import MediaPool


@pytest.fixture
async def media(tmp_path: Path) -> AsyncIterator[MediaPool]:
    pool = MediaPool(max_sessions=4, max_lag_ms=10_000)
    await pool.start(1, tmp_path, ["127.0.0.1"], [], lambda _event: None)
    yield pool
    await pool.stop()


async def connect(media: MediaPool, session_id: str, role: str,
                  camera: Camera | None) -> HeadlessPeer:
    peer = HeadlessPeer(None)
    if camera is not None:
        peer.pc.addTrack(camera)
    await peer.accept(await media.offer(session_id, role, await peer.offer()))
    await peer.wait_connected()
    return peer


def check_file(snap: dict[str, object], directory: Path, n: int) -> None:
    path = Path(str(snap["path"]))
    assert path.is_absolute() and path == (directory / f"snapshot-{n}.jpg").resolve()
    data = path.read_bytes()
    assert snap["sha256"] == hashlib.sha256(data).hexdigest() and snap["bytes"] == len(data)
    picture = cv2.imread(str(path))
    assert picture is not None and picture.shape == (480, 640, 3)
    assert (snap["width"], snap["height"]) == (640, 480)


async def test_snapshot_finds_the_face_once_the_customer_holds_up_their_id(
        media: MediaPool, tmp_path: Path, video: list[bytes]) -> None:
    camera = Camera(video)
    customer = await connect(media, "s1", "customer", camera)
    teller = await connect(media, "s1", "teller", Camera(video))
    start, received = time.monotonic(), teller.reception.frames["video"]

    plain = await media.snapshot("s1", "customer")
    plain_s = time.monotonic() - start
    assert plain["faces"] == 0  # the synthetic pattern is no face
    check_file(plain, tmp_path / "s1", 1)

    camera.show(id_camera_frames())
    switched = time.monotonic()
    held = await media.snapshot("s1", "customer")
    held_s = time.monotonic() - switched
    assert held["faces"] >= 1
    check_file(held, tmp_path / "s1", 2)
    print(f"snapshot took {plain_s:.2f} s (2 s loop), {held_s:.2f} s (1 s ID loop)")

    # the relay to the teller went on while the pictures were taken
    elapsed = time.monotonic() - start
    assert teller.reception.frames["video"] - received >= 0.6 * 15 * elapsed
    recordings = await media.close_session("s1")
    customer_rec = next(r for r in recordings if Path(r["path"]).name.startswith("customer"))
    assert customer_rec["video_frames"] >= 0.6 * 15 * elapsed
    await customer.close()
    await teller.close()


async def test_snapshot_without_video_is_refused_as_no_video(media: MediaPool) -> None:
    customer = await connect(media, "s2", "customer", None)  # audio only
    for session_id, role, message in (("s2", "customer", "the customer is sending no video"),
                                      ("s2", "teller", "the teller is sending no video"),
                                      ("nobody", "customer", "no media for this session")):
        with pytest.raises(RtcError) as refused:
            await media.snapshot(session_id, role)
        assert (refused.value.code, str(refused.value)) == ("no_video", message)
    await customer.close()


async def test_snapshot_gives_up_when_no_keyframe_ever_comes(
        media: MediaPool, video: list[bytes]) -> None:
    # a sender that never answers the keyframe request: only the loop's inter frames
    customer = await connect(media, "s3", "customer", Camera(video[1:]))
    start = time.monotonic()
    with pytest.raises(RtcError) as refused:
        await media.snapshot("s3", "customer", timeout_s=1.0)
    assert refused.value.code == "no_video"
    assert str(refused.value) == "no picture from the video within 1 s"
    assert 0.9 <= time.monotonic() - start < 3
    await customer.close()
