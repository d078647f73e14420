"""The avatar's face: the mouth follows the sound, eyes blink, idle sway keeps colours right."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vbank.avatar.face import SWAY_PX, FaceSprites
from vbank.avatar.track import AvatarTrack

SPRITES = FaceSprites(160, 120)


def mouth_region(planes: np.ndarray) -> np.ndarray:
    luma = planes[:120]
    return luma[70:85, 65:95].astype(int)  # around the lips at this size


def test_sound_opens_the_mouth_and_silence_closes_it() -> None:
    closed, wide = SPRITES.get(0.0, True), SPRITES.get(1.0, True)
    assert np.abs(mouth_region(closed) - mouth_region(wide)).sum() > 1000


async def test_track_frames_follow_the_level_and_blink() -> None:
    level = [0.0]
    track = AvatarTrack(SPRITES, lambda: level[0], fps=50, seed=1)
    quiet = (await track.recv()).to_ndarray()
    level[0] = 1.0
    loud = (await track.recv()).to_ndarray()
    assert np.abs(mouth_region(quiet) - mouth_region(loud)).sum() > 1000
    blinks = 0
    level[0] = 0.0
    previous = None
    for _ in range(400):  # 8 s at 50 fps: at least one blink
        luma = (await track.recv()).to_ndarray()[:120, 40:120]
        if previous is not None and np.abs(luma[45:65].astype(int) - previous).sum() > 500:
            blinks += 1
        previous = luma[45:65].astype(int)
    track.stop()
    assert blinks >= 1


def test_swaying_never_mixes_colour_planes() -> None:
    top_chroma = SPRITES.get(0.0, True)[120:, :].astype(int)
    for sway in range(-SWAY_PX, SWAY_PX + 1):
        chroma = SPRITES.get(0.0, True, sway)[120:, :].astype(int)
        # background chroma is nearly flat; a plane shifted into another would not be
        assert np.abs(chroma[:2] - top_chroma[:2]).max() <= 2, sway


def test_the_art_is_read_from_its_folder_and_bad_art_is_named(tmp_path: Path) -> None:
    import shutil

    import pytest

    from vbank.avatar.art import ART_DIR, ArtError, load

    art = load(ART_DIR)
    assert len(art.mouths) == 6 and art.base.shape[2] == 4
    folder = tmp_path / "art"
    shutil.copytree(ART_DIR, folder)
    # an artist's set with only two mouth pictures still makes a talking face
    (folder / "avatar.yaml").write_text(
        "base: base.png\neyes: {open: eyes_open.png, closed: eyes_closed.png}\n"
        "mouth: [mouth_0.png, mouth_5.png]\n")
    two = FaceSprites(160, 120, load(folder))
    assert two.mouth_steps == 2
    assert np.abs(mouth_region(two.get(0.0, True)) - mouth_region(two.get(1.0, True))).sum() \
        > 1000
    (folder / "mouth_5.png").write_bytes(b"not a picture")
    with pytest.raises(ArtError, match=r"mouth_5\.png is not a PNG"):
        load(folder)
    (folder / "mouth_5.png").unlink()
    with pytest.raises(ArtError, match=r"missing: .*mouth_5\.png"):
        load(folder)
