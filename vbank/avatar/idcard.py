"""A synthetic identity for headless customers: a face and a drawn PRC resident ID card.

When remote signing asks the customer to show their ID, a person holds the card up beside
their face; a headless customer switches its camera to these frames instead
(``Participant.show_frames``). The face is a real photograph (public domain, see
``assets/id/README.md``), so a face detector finds it as it would a person's; the card is
drawn. The same picture is written as a Chromium fake-camera file for browser tests.

Text is Latin: OpenCV's Hershey fonts have no Chinese glyphs and PIL is not a dependency.
"""

from __future__ import annotations

import fractions
import math
from functools import lru_cache
from pathlib import Path

import av
import cv2
import numpy as np
from numpy.typing import NDArray

from vbank.avatar.art import ART_DIR

Bgr = NDArray[np.uint8]

ID_DIR = ART_DIR.parent / "id"
FACE_PATH = ID_DIR / "face.png"
#: a well-formed resident ID number (valid check digit) that is nobody's; the scenario
#: fixtures use the same one
DEMO_ID_NUMBER = "11010519491231002X"
DEMO_NAME = "Wang Fang"
#: the size everything is drawn at; other frame sizes are scaled from it
SCENE_W, SCENE_H = 640, 480
#: the card, in ISO ID-1 proportions (85.6 x 54 mm)
CARD_W, CARD_H = 340, 214
#: the photo on the card and the face beside it, in scene pixels
CARD_PHOTO = (82, 102)
PORTRAIT = (256, 320)
#: VP8 bit rate of the camera loop: high enough that the first keyframe (the one a snapshot
#: decodes) keeps the face sharp
ID_BIT_RATE = 1_500_000

INK = (40, 40, 40)
LABEL = (150, 110, 60)
FONT = cv2.FONT_HERSHEY_SIMPLEX


def load_face() -> Bgr:
    """The photograph of the face (160x200, BGR)."""
    face = cv2.imread(str(FACE_PATH), cv2.IMREAD_COLOR)
    if face is None:
        raise FileNotFoundError(f"cannot read {FACE_PATH}")
    return np.asarray(face, np.uint8)


def _birth_and_sex(id_number: str) -> tuple[str, str]:
    """Date of birth and sex as the number encodes them (GB 11643), blank if it cannot."""
    digits = id_number.strip()
    if len(digits) != 18 or not digits[:17].isdigit():
        return "", ""
    born = f"{digits[6:10]} {digits[10:12]} {digits[12:14]}"
    return born, "M" if int(digits[16]) % 2 else "F"


def _text(img: Bgr, text: str, at: tuple[int, int], scale: float, colour: tuple[int, int, int],
          thickness: int = 1) -> None:
    cv2.putText(img, text, at, FONT, scale, colour, thickness, cv2.LINE_AA)


def draw_id_card(name: str, id_number: str, face: Bgr | None = None) -> Bgr:
    """The photo side of a resident ID card, ``CARD_W`` x ``CARD_H``, BGR."""
    card = np.empty((CARD_H, CARD_W, 3), np.uint8)
    # pale paper shading from cream to light blue, with the faint wave pattern of the print
    t = np.linspace(0.0, 1.0, CARD_W, dtype=np.float32)[None, :, None]
    card[:] = ((1 - t) * np.array([218, 238, 246]) + t * np.array([246, 232, 214])).astype(np.uint8)
    xs = np.arange(0, CARD_W, 4)
    for k in range(9):
        ys = 24 * k + 10 + 6 * np.sin(xs / 23.0 + k)
        points = np.stack([xs, ys], axis=1).astype(np.int32)
        cv2.polylines(card, [points], False, (226, 214, 200), 1, cv2.LINE_AA)
    born, sex = _birth_and_sex(id_number)
    rows = [("Name", name.upper(), 0.55, 2), ("Sex", f"{sex}     Ethnicity  Han", 0.42, 1),
            ("Born", born, 0.42, 1), ("Address", "12 Chaoyang Road", 0.42, 1),
            ("", "Beijing", 0.42, 1)]
    y = 40
    for label, value, scale, weight in rows:
        _text(card, label, (14, y), 0.36, LABEL)
        _text(card, value, (80, y), scale, INK, weight)
        y += 27
    _text(card, "Citizen ID No.", (14, CARD_H - 22), 0.36, LABEL)
    _text(card, id_number, (118, CARD_H - 20), 0.52, INK, 2)
    photo = cv2.resize(load_face() if face is None else face, CARD_PHOTO,
                       interpolation=cv2.INTER_AREA)
    x0, y0 = CARD_W - CARD_PHOTO[0] - 16, 22
    card[y0:y0 + CARD_PHOTO[1], x0:x0 + CARD_PHOTO[0]] = photo
    cv2.rectangle(card, (0, 0), (CARD_W - 1, CARD_H - 1), (150, 150, 150), 1, cv2.LINE_AA)
    return card


def id_scene(name: str = DEMO_NAME, id_number: str = DEMO_ID_NUMBER,
             width: int = SCENE_W, height: int = SCENE_H) -> Bgr:
    """What the camera sees: the customer's face and, beside it, their ID card held up."""
    scene = np.empty((SCENE_H, SCENE_W, 3), np.uint8)
    t = np.linspace(0.0, 1.0, SCENE_H, dtype=np.float32)[:, None, None]
    scene[:] = ((1 - t) * np.array([200, 205, 210])
                + t * np.array([150, 160, 170])).astype(np.uint8)
    face = load_face()
    px, py = 28, (SCENE_H - PORTRAIT[1]) // 2
    scene[py:py + PORTRAIT[1], px:px + PORTRAIT[0]] = cv2.resize(
        face, PORTRAIT, interpolation=cv2.INTER_CUBIC)
    cx, cy = SCENE_W - CARD_W - 14, (SCENE_H - CARD_H) // 2 + 30
    # a soft shadow under the card, so it reads as held in front of the wall
    shadow = scene[cy + 4:cy + CARD_H + 4, cx + 4:cx + CARD_W + 4]
    shadow[:] = np.asarray(shadow * 0.7, np.uint8)
    scene[cy:cy + CARD_H, cx:cx + CARD_W] = draw_id_card(name, id_number, face)
    if (width, height) != (SCENE_W, SCENE_H):
        return np.asarray(cv2.resize(scene, (width, height), interpolation=cv2.INTER_AREA),
                          np.uint8)
    return scene


def encode_vp8(pictures: list[Bgr], fps: int, bit_rate: int = ID_BIT_RATE) -> list[bytes]:
    """VP8 frames of ``pictures`` in order, the first a keyframe: a loop to send as is."""
    height, width = pictures[0].shape[:2]
    ctx = av.CodecContext.create("libvpx", "w")
    ctx.width, ctx.height, ctx.pix_fmt = width, height, "yuv420p"
    ctx.time_base = fractions.Fraction(1, fps)
    ctx.bit_rate = bit_rate
    ctx.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    out: list[bytes] = []
    for i, picture in enumerate(pictures):
        frame = av.VideoFrame.from_ndarray(picture, format="bgr24").reformat(format="yuv420p")
        frame.pts = i
        out += [bytes(p) for p in ctx.encode(frame)]
    out += [bytes(p) for p in ctx.encode(None)]
    return out


@lru_cache(maxsize=4)
def _camera_loop(name: str, id_number: str, width: int, height: int, fps: int,
                 seconds: float) -> tuple[bytes, ...]:
    picture = id_scene(name, id_number, width, height)
    return tuple(encode_vp8([picture] * max(1, math.ceil(fps * seconds)), fps))


def id_camera_frames(name: str = DEMO_NAME, id_number: str = DEMO_ID_NUMBER,
                     width: int = SCENE_W, height: int = SCENE_H, fps: int = 15,
                     seconds: float = 1.0) -> list[bytes]:
    """The face-and-card picture as a loop of VP8 frames, as ``HeadlessPeer`` sends video.

    The loop starts with a keyframe and lasts ``seconds``, so a receiver that joins or asks
    for a picture waits at most that long (a pre-encoded loop cannot answer a PLI). Use the
    same size as the camera it replaces: the recording keeps the first size it saw. Encoding
    takes about 0.1 s; the last few loops are cached.
    """
    return list(_camera_loop(name, id_number, width, height, fps, seconds))


def write_fake_camera_y4m(path: Path, name: str = DEMO_NAME, id_number: str = DEMO_ID_NUMBER,
                          width: int = SCENE_W, height: int = SCENE_H, fps: int = 15,
                          seconds: float = 3.0) -> Path:
    """Write the face-and-card picture as a Chromium fake camera (``.y4m``, I420).

    Use it with ``--use-fake-device-for-media-stream --use-file-for-fake-video-capture=PATH``;
    Chromium loops the file. Each frame is 1.5 bytes a pixel: 3 s of 640x480 at 15 fps is
    about 21 MB.
    """
    picture = id_scene(name, id_number, width, height)
    planes = av.VideoFrame.from_ndarray(picture, format="bgr24").reformat(format="yuv420p")
    i420 = np.asarray(planes.to_ndarray(), np.uint8).tobytes()  # Y, then U, then V
    frame = b"FRAME\n" + i420
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        f.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(max(1, round(fps * seconds))):
            f.write(frame)
    return path
