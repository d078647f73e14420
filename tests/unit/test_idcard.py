"""The headless customer's ID picture: a face the snapshot detector finds, a card, a fake camera."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from vbank.avatar.idcard import (
    DEMO_ID_NUMBER,
    FACE_PATH,
    id_camera_frames,
    id_scene,
    load_face,
    write_fake_camera_y4m,
)
from vbank.headless import Camera
from vbank.media.packets import vp8_size
from vbank.rtc.peer import encode_vp8_loop
from vbank.rtc.snapshot import count_faces

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def decode_first(frames: list[bytes]) -> np.ndarray:
    ctx = av.CodecContext.create("vp8", "r")
    return np.asarray(ctx.decode(av.Packet(frames[0]))[0].to_ndarray(format="bgr24"))


def test_the_face_photograph_is_found_by_the_snapshot_detector() -> None:
    assert FACE_PATH.stat().st_size <= 60_000
    assert count_faces(load_face()) == 1


def test_the_id_scene_counts_the_face_but_not_the_small_photo_on_the_card() -> None:
    scene = id_scene("Li Lei", DEMO_ID_NUMBER)
    assert scene.shape == (480, 640, 3)
    assert count_faces(scene) == 1
    card_only = scene.copy()
    card_only[:, :300] = 180  # the face beside the card hidden: the card's photo is too small
    assert count_faces(card_only) == 0


def test_id_camera_frames_start_with_a_keyframe_that_shows_a_face() -> None:
    frames = id_camera_frames(width=640, height=480, fps=15, seconds=1.0)
    assert len(frames) == 15
    assert vp8_size(frames[0]) == (640, 480)  # a keyframe header
    assert all(vp8_size(f) is None for f in frames[1:])
    assert count_faces(decode_first(frames)) == 1


def test_the_default_synthetic_camera_shows_no_face() -> None:
    assert count_faces(decode_first(encode_vp8_loop(640, 480, 15, 30))) == 0


def test_the_demo_id_number_has_a_valid_check_digit() -> None:
    total = sum(int(d) * w for d, w in zip(DEMO_ID_NUMBER[:17], WEIGHTS, strict=True))
    assert DEMO_ID_NUMBER[17] == "10X98765432"[total % 11]


def test_fake_camera_file_is_a_y4m_chromium_can_loop(tmp_path: Path) -> None:
    path = write_fake_camera_y4m(tmp_path / "id.y4m", seconds=2.0, fps=15)
    data = path.read_bytes()
    header, _, rest = data.partition(b"\n")
    assert header == b"YUV4MPEG2 W640 H480 F15:1 Ip A1:1 C420jpeg"
    frame_bytes = len(b"FRAME\n") + 640 * 480 * 3 // 2
    assert len(rest) == 30 * frame_bytes and rest.startswith(b"FRAME\n")
    with av.open(str(path)) as container:
        pictures = [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]
    assert len(pictures) == 30 and pictures[0].shape == (480, 640, 3)
    assert count_faces(np.asarray(pictures[-1])) == 1


async def test_the_camera_switches_frames_and_back_on_one_timeline() -> None:
    own, held = [b"own0", b"own1"], [b"id0", b"id1"]
    camera = Camera(own, fps=200)
    sent = [await camera.recv()]
    camera.show(held)
    sent += [await camera.recv(), await camera.recv(), await camera.recv()]
    camera.show(None)
    sent.append(await camera.recv())
    assert [bytes(p) for p in sent] == [b"own0", b"id0", b"id1", b"id0", b"own0"]
    pts = [p.pts for p in sent]
    assert pts == sorted(pts) and len(set(pts)) == len(pts)  # the timeline never jumps back
    camera.stop()
