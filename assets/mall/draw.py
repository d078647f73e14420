"""Procedural product pictures for the bank's points mall.

Draws seven 256x256 flat-illustration product shots (coffee voucher, umbrella, tea set,
power bank, movie tickets, silver coin, rice cooker) with Pillow and numpy and writes them
as PNG files next to this script:

    python assets/mall/draw.py

Shapes are given in 256-px coordinates, drawn at 4x size and scaled down with LANCZOS,
which anti-aliases every edge. All pictures share one light warm-grey radial background,
soft drop shadows and the same flat, lightly shaded style.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter

SIZE = 256
K = 4  # supersampling factor
W = SIZE * K
OUT = Path(__file__).resolve().parent
YY, XX = np.mgrid[0:W, 0:W].astype(np.float32)

Color = tuple[int, ...]
Coords = Sequence[Any]  # flat numbers (x0, y0, x1, y1) or a list of (x, y) points
SHADOW: Color = (96, 84, 72)
SCALED = {"radius", "width"}


def scale(xy: Coords) -> list[Any]:
    """Map 256-px coordinates onto the 4x drawing surface."""
    return [(p[0] * K, p[1] * K) if isinstance(p, tuple) else p * K for p in xy]


def options(kw: dict[str, Any]) -> dict[str, Any]:
    """Drop unset drawing options and scale the ones measured in pixels."""
    return {k: round(v * K) if k in SCALED else v for k, v in kw.items() if v is not None}


def mask(kind: str, xy: Coords, **kw: Any) -> Image.Image:
    """A coverage mask of one ImageDraw shape (``kind`` is an ImageDraw method name)."""
    m = Image.new("L", (W, W), 0)
    getattr(ImageDraw.Draw(m), kind)(scale(xy), fill=255, **options(kw))
    return m


def carve(m: Image.Image, kind: str, xy: Coords, **kw: Any) -> Image.Image:
    """Cut a shape out of a mask, in place."""
    getattr(ImageDraw.Draw(m), kind)(scale(xy), fill=0, **options(kw))
    return m


def clip(m: Image.Image, kind: str, xy: Coords, **kw: Any) -> Image.Image:
    """The part of mask ``m`` that lies inside a shape."""
    return ImageChops.multiply(m, mask(kind, xy, **kw))


def star(cx: float, cy: float, r1: float, r2: float, n: int = 5) -> list[tuple[float, float]]:
    """Points of an n-pointed star, outer radius r1, inner radius r2, one point up."""
    points = zip([math.pi * i / n - math.pi / 2 for i in range(2 * n)], [r1, r2] * n, strict=True)
    return [(cx + r * math.cos(a), cy + r * math.sin(a)) for a, r in points]


def bolt(cx: float, cy: float, s: float) -> list[tuple[float, float]]:
    """A lightning bolt of height ~2s centred on (cx, cy)."""
    raw = [(0.2, -1), (-0.55, 0.12), (-0.02, 0.12), (-0.2, 1), (0.55, -0.15), (0.02, -0.15)]
    return [(cx + x * s, cy + y * s) for x, y in raw]


def background() -> Image.Image:
    """Very light warm-grey radial gradient."""
    r = np.hypot(XX / W - 0.5, YY / W - 0.44) / 0.72
    t = np.clip(r, 0, 1)[..., None] ** 1.6
    inner, outer = np.array([250, 248, 245]), np.array([226, 221, 214])
    return Image.fromarray((inner * (1 - t) + outer * t).astype(np.uint8))


class Canvas:
    """A 4x RGB drawing surface addressed in 256-px coordinates."""

    def __init__(self, plain: Color | None = None) -> None:
        self.img = Image.new("RGB", (W, W), plain) if plain else background()
        self.draw = ImageDraw.Draw(self.img, "RGBA")  # RGBA fills blend

    def shape(self, kind: str, xy: Coords, fill: Color | None = None, **kw: Any) -> None:
        """Draw an ImageDraw shape straight onto the canvas (RGBA colours blend)."""
        getattr(self.draw, kind)(scale(xy), **options({"fill": fill, **kw}))

    def paint(self, m: Image.Image, c1: Color, c2: Color | None = None, angle: float = 90) -> None:
        """Fill mask ``m`` with a colour or a linear gradient (angle 90 = top to bottom)."""
        if c2 is None:
            self.img.paste(c1[:3], (0, 0, W, W), m)
            return
        x0, y0, x1, y1 = m.getbbox() or (0, 0, W, W)
        a = math.radians(angle)
        proj = XX * math.cos(a) + YY * math.sin(a)
        ends = [x * math.cos(a) + y * math.sin(a) for x in (x0, x1) for y in (y0, y1)]
        t = np.clip((proj - min(ends)) / (max(ends) - min(ends) + 1e-6), 0, 1)[..., None]
        arr = np.array(c1[:3]) * (1 - t) + np.array(c2[:3]) * t
        self.img.paste(Image.fromarray(arr.astype(np.uint8)), (0, 0, W, W), m)

    def shadow(self, m: Image.Image, dx: float = 0, dy: float = 6, blur: float = 6,
               alpha: float = 0.3) -> None:
        """Soft drop shadow of mask ``m``, offset by (dx, dy)."""
        s = ImageChops.offset(m, round(dx * K), round(dy * K))
        s = s.filter(ImageFilter.GaussianBlur(blur * K)).point(lambda v: round(v * alpha))
        self.img.paste(SHADOW, (0, 0, W, W), s)

    def ground(self, cx: float, cy: float, rx: float, ry: float, alpha: float = 0.35) -> None:
        """Blurred contact shadow ellipse under a standing object."""
        self.shadow(mask("ellipse", (cx - rx, cy - ry, cx + rx, cy + ry)), 0, 0, ry, alpha)

    def stamp(self, layer: Canvas, m: Image.Image, angle: float, shift: tuple[int, int]) -> None:
        """Rotate a separately drawn piece (pixels and mask) about the centre, move it by
        ``shift`` and lay it on with a drop shadow."""
        kw: dict[str, Any] = {"resample": Image.Resampling.BICUBIC,
                              "translate": (shift[0] * K, shift[1] * K)}
        rm = m.rotate(angle, **kw)
        self.shadow(rm, 2, 7, 7, 0.3)
        self.img.paste(layer.img.rotate(angle, **kw), (0, 0, W, W), rm)

    def steam(self, x: float, y: float, h: float, phase: float = 0) -> None:
        """A wavy wisp of steam rising h px from (x, y)."""
        pts = [(x + 5 * math.sin(phase + i / 6), y - h * i / 24) for i in range(25)]
        self.shape("line", pts, (150, 140, 130, 110), width=3.5, joint="curve")

    def save(self, name: str) -> None:
        small = self.img.resize((SIZE, SIZE), Image.Resampling.LANCZOS)
        small.save(OUT / name, optimize=True)


def coffee_voucher(c: Canvas) -> None:
    body = mask("rounded_rectangle", (26, 70, 230, 186), radius=10)
    for x in (26, 230):
        carve(body, "ellipse", (x - 11, 117, x + 11, 139))
    c.shadow(body)
    c.paint(body, (255, 251, 241), (245, 234, 212))
    c.paint(clip(body, "rectangle", (170, 60, 240, 200)), (214, 120, 64), (184, 92, 48))
    for y in range(78, 182, 9):
        c.shape("ellipse", (167, y, 172, y + 5), (200, 180, 150))
    c.shape("rounded_rectangle", (34, 78, 160, 178), None, outline=(226, 206, 172), width=2,
            radius=6)
    c.shape("ellipse", (46, 150, 138, 166), (226, 212, 190))  # saucer
    c.shape("arc", (108, 114, 134, 142), (110, 70, 48), start=-80, end=80, width=6)
    cup = mask("chord", (56, 70, 122, 158), start=0, end=180)
    c.paint(cup, (140, 92, 62), (104, 64, 42), angle=0)
    c.shape("ellipse", (56, 108, 122, 120), (168, 116, 80))
    c.shape("ellipse", (61, 110, 117, 118), (84, 50, 32))  # coffee
    for i, x in enumerate((76, 89, 102)):
        c.steam(x, 102, 22, i * 1.7)
    c.shape("ellipse", (185, 86, 215, 116), (255, 236, 214))
    c.shape("polygon", star(200, 101, 11, 4.5), (214, 120, 64))
    for y, w in ((130, 28), (142, 20), (154, 24)):
        c.shape("rounded_rectangle", (186, y, 186 + w, y + 5), (255, 232, 208), radius=2.5)


def umbrella(c: Canvas) -> None:
    c.ground(128, 222, 64, 7, 0.3)
    c.shape("line", (128, 126, 128, 186), (150, 154, 162), width=4)
    c.shape("ellipse", (123, 200, 133, 228), None, outline=(70, 70, 80), width=2)
    c.shape("rounded_rectangle", (121, 180, 135, 214), (40, 40, 48), radius=6)
    canopy = mask("pieslice", (38, 50, 218, 200), start=180, end=360)
    for x in (38, 83, 128, 173):
        carve(canopy, "ellipse", (x + 1, 117, x + 44, 133))
    c.shadow(canopy, 0, 8, 8, 0.25)
    c.paint(canopy, (36, 56, 118), (22, 34, 78), angle=0)
    c.paint(clip(canopy, "ellipse", (83, 50, 173, 200)), (58, 84, 156), (38, 58, 116), angle=0)
    c.paint(clip(canopy, "rectangle", (128, 40, 180, 130)), (34, 52, 108))
    for x in (39, 83, 128, 173, 217):
        c.shape("ellipse", (x - 3, 122, x + 3, 128), (190, 194, 202))
    c.shape("arc", (60, 62, 120, 150), (255, 255, 255, 60), start=200, end=250, width=4)
    c.shape("rounded_rectangle", (125.5, 36, 130.5, 52), (170, 174, 182), radius=2)


def tea_set(c: Canvas) -> None:
    light, dark, deep = (186, 220, 196), (128, 178, 152), (98, 150, 124)
    c.ground(128, 184, 62, 8)
    c.shape("ellipse", (152, 106, 204, 164), None, outline=dark, width=9)
    c.shape("polygon", [(94, 150), (60, 118), (44, 100), (54, 98), (70, 112), (98, 126)], deep)
    c.paint(mask("ellipse", (76, 92, 180, 184)), light, dark)
    c.shape("ellipse", (90, 104, 114, 132), (255, 255, 255, 90))
    c.shape("rounded_rectangle", (92, 176, 164, 186), deep, radius=4)
    c.paint(mask("chord", (100, 76, 156, 112), start=180, end=360), light, dark)
    c.shape("ellipse", (96, 90, 160, 100), deep)
    c.shape("ellipse", (120, 66, 136, 82), dark)
    for x0 in (28, 170):
        c.ground(x0 + 29, 215, 30, 5, 0.35)
        c.shape("rounded_rectangle", (x0 + 18, 206, x0 + 40, 215), deep, radius=3)
        c.paint(mask("chord", (x0, 160, x0 + 58, 212), start=0, end=180), light, deep)
        c.shape("ellipse", (x0, 180, x0 + 58, 192), light)
        c.shape("ellipse", (x0 + 4, 182, x0 + 54, 190), (200, 160, 82))
        c.steam(x0 + 29, 174, 24, x0)


def power_bank(c: Canvas) -> None:
    side = mask("rounded_rectangle", (34, 84, 222, 178), radius=20)
    top = mask("rounded_rectangle", (34, 70, 222, 164), radius=20)
    c.shadow(side, 4, 8, 8, 0.3)
    c.paint(side, (40, 66, 96), (28, 46, 70))
    c.paint(top, (104, 160, 204), (62, 114, 164), angle=60)
    c.shape("rounded_rectangle", (46, 80, 210, 154), None, outline=(255, 255, 255, 40),
            width=2, radius=14)
    c.shape("rounded_rectangle", (58, 166, 88, 175), (14, 18, 26), radius=4.5)  # USB-C
    c.shape("rounded_rectangle", (64, 169, 82, 172), (150, 160, 176), radius=1.5)
    c.shape("ellipse", (68, 92, 116, 140), (255, 255, 255, 50))
    c.shape("polygon", bolt(92, 116, 17), (255, 214, 90))
    for x in (146, 160, 174):  # three of four charge LEDs lit, with a soft glow
        c.shape("ellipse", (x - 4, 133, x + 12, 149), (120, 255, 170, 70))
        c.shape("ellipse", (x, 137, x + 8, 145), (110, 240, 160))
    c.shape("ellipse", (188, 137, 196, 145), (48, 84, 120))


def ticket(colour: Color, dark: Color, light: Color) -> tuple[Canvas, Image.Image]:
    """One cinema ticket centred on (128, 128), drawn on its own layer."""
    t = Canvas(plain=colour)
    m = mask("rounded_rectangle", (48, 92, 208, 164), radius=6)
    for x in (48, 208):
        carve(m, "ellipse", (x - 9, 119, x + 9, 137))
    t.paint(m, colour, dark)
    for y in range(96, 162, 7):
        t.shape("ellipse", (163, y, 167, y + 4), light)
    t.shape("ellipse", (70, 107, 112, 149), light)
    for hx, hy in star(91, 128, 12, 12, n=3):  # six holes of a film reel
        t.shape("ellipse", (hx - 4.5, hy - 4.5, hx + 4.5, hy + 4.5), dark)
    t.shape("ellipse", (88, 125, 94, 131), dark)
    for y, w in ((112, 32), (124, 24), (136, 28)):
        t.shape("rounded_rectangle", (120, y, 120 + w, y + 6), light, radius=3)
    t.shape("polygon", star(185, 128, 10, 4), light)
    return t, m


def movie_tickets(c: Canvas) -> None:
    c.stamp(*ticket((248, 196, 72), (232, 164, 44), (255, 238, 190)), 14, (0, -22))
    c.stamp(*ticket((226, 66, 70), (190, 40, 52), (255, 214, 210)), -8, (0, 22))


def silver_coin(c: Canvas) -> None:
    c.ground(128, 204, 70, 8, 0.35)
    c.shape("ellipse", (46, 44, 210, 208), (132, 138, 148))
    c.paint(mask("ellipse", (46, 38, 210, 202)), (244, 246, 250), (150, 156, 168), angle=60)
    c.paint(mask("ellipse", (60, 52, 196, 188)), (168, 174, 186), (236, 239, 244), angle=60)
    for i, (x, y) in enumerate(star(128, 120, 58, 58, n=12)):  # ring of beads
        r = 3 if i % 2 == 0 else 1.8
        c.shape("ellipse", (x - r, y - r, x + r, y + r), (140, 146, 158))
        c.shape("ellipse", (x - r + 0.8, y - r + 0.8, x + r - 0.8, y + r - 0.8), (236, 238, 243))
    c.shape("ellipse", (92, 84, 164, 156), None, outline=(150, 156, 168), width=2)
    c.shape("polygon", star(129.5, 121.5, 30, 12), (128, 134, 146))
    c.shape("polygon", star(128, 120, 30, 12), (226, 230, 237))
    c.shape("polygon", [*star(128, 120, 30, 12)[:6], (128, 120)], (246, 248, 251))
    c.shape("polygon", star(176, 66, 12, 2, n=4), (255, 255, 255, 230))


def rice_cooker(c: Canvas) -> None:
    c.ground(128, 204, 78, 8, 0.35)
    for x in (72, 170):
        c.shape("rounded_rectangle", (x, 194, x + 14, 206), (70, 72, 80), radius=3)
    c.paint(mask("rounded_rectangle", (52, 100, 204, 202), radius=34), (255,) * 3, (218, 222, 228))
    c.paint(mask("chord", (58, 60, 198, 140), start=180, end=360), (250,) * 3, (222, 226, 232))
    c.shape("rounded_rectangle", (56, 97, 200, 105), (196, 200, 208), radius=4)
    c.shape("rounded_rectangle", (110, 56, 146, 68), (150, 156, 166), radius=5)
    c.shape("ellipse", (154, 74, 166, 82), (190, 194, 202))
    c.shape("rounded_rectangle", (98, 134, 158, 172), (60, 64, 76), radius=8)
    c.shape("rounded_rectangle", (106, 142, 136, 152), (120, 200, 230), radius=2)
    c.shape("ellipse", (142, 143, 150, 151), (230, 70, 60))
    c.shape("rounded_rectangle", (106, 158, 150, 164), (110, 116, 130), radius=3)
    c.shape("ellipse", (62, 110, 84, 170), (255, 255, 255, 120))
    c.steam(148, 52, 30, 1.0)
    c.steam(160, 50, 24, 2.8)
    ribbon = mask("polygon", [(150, 0), (204, 0), (256, 52), (256, 106)])
    c.shadow(ribbon, 0, 3, 3, 0.35)
    c.paint(ribbon, (236, 62, 62), (200, 30, 44), angle=45)
    for d in (6, 48):  # thin light borders along both edges
        c.shape("line", [(150 + d, 0), (256, 106 - d)], (255, 210, 200, 150), width=1.5)
    for x, y in ((190, 26), (214, 50), (238, 74)):
        c.shape("polygon", bolt(x, y, 10), (255, 236, 170))


PRODUCTS: list[Callable[[Canvas], None]] = [
    coffee_voucher, umbrella, tea_set, power_bank, movie_tickets, silver_coin, rice_cooker,
]


def main() -> None:
    for draw in PRODUCTS:
        canvas, name = Canvas(), f"{draw.__name__}.png"
        draw(canvas)
        canvas.save(name)
        print(f"{name}: {(OUT / name).stat().st_size} bytes")


if __name__ == "__main__":
    main()
