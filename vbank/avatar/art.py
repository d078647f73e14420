"""The avatar's art: layered PNGs in ``assets/avatar/`` and the drawing that made them.

``avatar.yaml`` names the layers, all the same size: a ``base`` picture (the teller without
eyes or mouth), one overlay per eye state and one per mouth opening, closed to wide open.
Overlays are RGBA; a face is the base with one eye layer and one mouth layer on top. An
artist replaces the PNGs (any size, same for all) and the avatar follows; the shipped set is
drawn by :func:`render` (``python -m vbank.avatar.art``), supersampled so edges are smooth.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import yaml
from numpy.typing import NDArray

ART_DIR = Path(__file__).resolve().parents[2] / "assets" / "avatar"
MASTER = (640, 480)  # width, height of the shipped art
SUPERSAMPLE = 3
MOUTH_STEPS = 6

Rgba = NDArray[np.uint8]
Mask = NDArray[np.bool_]


class ArtError(Exception):
    """The avatar's art is missing or unreadable; the message names the file."""


@dataclass(frozen=True)
class Art:
    base: Rgba
    eyes: dict[bool, Rgba]  # open → layer
    mouths: list[Rgba]  # closed → wide open


# ------------------------------------------------------------------------------ drawing
def _canvas(h: int, w: int) -> tuple[Callable[..., Mask], float, float]:
    y, x = np.ogrid[:h, :w]
    s = h / 240.0

    def ellipse(cy: float, cx: float, ry: float, rx: float) -> Mask:
        return ((y - cy * s) / max(ry * s, 0.5)) ** 2 + ((x - cx) / max(rx * s, 0.5)) ** 2 \
            <= 1.0

    return ellipse, s, w / 2


def _paint(layer: NDArray[np.uint8], mask: Mask, rgb: tuple[int, int, int]) -> None:
    layer[mask, :3] = rgb
    layer[mask, 3] = 255


def _base(h: int, w: int) -> Rgba:
    ellipse, s, cx = _canvas(h, w)
    img = np.zeros((h, w, 4), np.uint8)
    ramp = np.linspace(0, 1, h)[:, None]
    img[..., :3] = np.stack([228 - 20 * ramp, 236 - 16 * ramp, 244 - 8 * ramp], -1)
    img[..., 3] = 255
    _paint(img, ellipse(240 + 20, cx, 90, 130), (12, 59, 94))  # navy jacket
    _paint(img, ellipse(198, cx, 24, 19), (230, 188, 156))  # neck, behind the chin
    _paint(img, ellipse(240 - 6, cx, 36, 26), (245, 245, 245))  # collar
    _paint(img, ellipse(216, cx - 52 * s, 4, 4), (190, 150, 60))  # the bank's pin
    _paint(img, ellipse(110, cx, 72, 58), (40, 30, 28))  # hair
    _paint(img, ellipse(122, cx, 66, 52), (241, 204, 172))  # face
    fringe = ellipse(78, cx, 26, 56) & (np.ogrid[:h, :w][0] < 86 * s)
    _paint(img, fringe, (40, 30, 28))
    for side in (-1, 1):
        _paint(img, ellipse(100, cx + side * 21 * s, 1.5, 9), (60, 40, 30))  # brows
        _paint(img, ellipse(132, cx + side * 34 * s, 6, 9), (240, 180, 160))  # cheeks
    _paint(img, ellipse(128, cx, 7, 3.5), (225, 180, 150))  # nose
    return img


def _eyes(h: int, w: int, opened: bool) -> Rgba:
    ellipse, s, cx = _canvas(h, w)
    layer = np.zeros((h, w, 4), np.uint8)
    for side in (-1, 1):
        ex = cx + side * 21 * s
        if opened:
            _paint(layer, ellipse(112, ex, 7, 6), (255, 255, 255))
            _paint(layer, ellipse(113, ex, 4.5, 4.5), (50, 35, 25))
            _paint(layer, ellipse(111, ex + 1.5 * s, 1.3, 1.3), (255, 255, 255))  # glint
        else:
            _paint(layer, ellipse(114, ex, 1.2, 7), (90, 60, 50))
    return layer


def _mouth(h: int, w: int, opening: float) -> Rgba:
    ellipse, _, cx = _canvas(h, w)
    layer = np.zeros((h, w, 4), np.uint8)
    open_ry = 1.5 + 9.0 * opening
    _paint(layer, ellipse(150, cx, open_ry, 14), (150, 50, 60))  # lips
    if opening > 0.15:
        _paint(layer, ellipse(150, cx, open_ry - 2.5, 11), (70, 20, 30))  # inside
        if opening > 0.5:
            _paint(layer, ellipse(150 - open_ry + 3.5, cx, 1.6, 8), (250, 250, 245))  # teeth
    return layer


def _downsample(img: Rgba, factor: int) -> Rgba:
    """Average ``factor``² blocks, colours weighted by coverage (premultiplied alpha)."""
    h, w = img.shape[0] // factor, img.shape[1] // factor
    blocks = img[:h * factor, :w * factor].astype(np.float64).reshape(h, factor, w, factor, 4)
    alpha = blocks[..., 3:].mean(axis=(1, 3))
    colour = (blocks[..., :3] * blocks[..., 3:]).mean(axis=(1, 3))
    out = np.zeros((h, w, 4), np.uint8)
    out[..., :3] = np.where(alpha > 0, colour / np.maximum(alpha, 1e-9), 0).round()
    out[..., 3] = alpha[..., 0].round()
    return out


def render(size: tuple[int, int] = MASTER, supersample: int = SUPERSAMPLE) -> Art:
    w, h = size[0] * supersample, size[1] * supersample
    return Art(base=_downsample(_base(h, w), supersample),
               eyes={o: _downsample(_eyes(h, w, o), supersample) for o in (True, False)},
               mouths=[_downsample(_mouth(h, w, m / (MOUTH_STEPS - 1)), supersample)
                       for m in range(MOUTH_STEPS)])


# --------------------------------------------------------------------------- files
def _write_png(path: Path, img: Rgba) -> None:
    ctx = av.CodecContext.create("png", "w")
    ctx.width, ctx.height, ctx.pix_fmt = img.shape[1], img.shape[0], "rgba"
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgba")
    path.write_bytes(b"".join(bytes(p) for p in [*ctx.encode(frame), *ctx.encode(None)]))


def _read_png(path: Path) -> Rgba:
    try:
        ctx = av.CodecContext.create("png", "r")
        frames = ctx.decode(av.Packet(path.read_bytes()))
        return np.asarray(frames[0].to_ndarray(format="rgba"), np.uint8)
    except FileNotFoundError as exc:
        raise ArtError(f"avatar art missing: {path}") from exc
    except (av.FFmpegError, IndexError, ValueError) as exc:
        raise ArtError(f"avatar art unreadable: {path} is not a PNG") from exc


def save(art: Art, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    _write_png(folder / "base.png", art.base)
    _write_png(folder / "eyes_open.png", art.eyes[True])
    _write_png(folder / "eyes_closed.png", art.eyes[False])
    for i, layer in enumerate(art.mouths):
        _write_png(folder / f"mouth_{i}.png", layer)
    manifest = {"base": "base.png", "eyes": {"open": "eyes_open.png",
                                              "closed": "eyes_closed.png"},
                "mouth": [f"mouth_{i}.png" for i in range(len(art.mouths))]}
    (folder / "avatar.yaml").write_text(
        "# The digital teller's layers (see vbank/avatar/art.py); all PNGs the same size.\n"
        + yaml.safe_dump(manifest, sort_keys=False), encoding="utf-8")


def load(folder: Path = ART_DIR) -> Art:
    """The layers named by ``folder/avatar.yaml``; :class:`ArtError` names what is wrong."""
    try:
        manifest = yaml.safe_load((folder / "avatar.yaml").read_text(encoding="utf-8"))
        base = _read_png(folder / manifest["base"])
        eyes = {True: _read_png(folder / manifest["eyes"]["open"]),
                False: _read_png(folder / manifest["eyes"]["closed"])}
        mouths = [_read_png(folder / name) for name in manifest["mouth"]]
    except FileNotFoundError as exc:
        raise ArtError(f"avatar art missing: {folder / 'avatar.yaml'}") from exc
    except (KeyError, TypeError, yaml.YAMLError) as exc:
        raise ArtError(f"{folder / 'avatar.yaml'}: needs base, eyes.open, eyes.closed and a "
                       f"mouth list") from exc
    if len(mouths) < 2:
        raise ArtError(f"{folder / 'avatar.yaml'}: at least two mouth layers (closed, open)")
    for layer in (*eyes.values(), *mouths):
        if layer.shape != base.shape:
            raise ArtError(f"{folder}: every layer must be {base.shape[1]}x{base.shape[0]}")
    return Art(base, eyes, mouths)


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else ART_DIR
    save(render(), target)
    print(f"avatar art written to {target}")
