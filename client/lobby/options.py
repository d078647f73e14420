"""The options of ``vbank lobby``, kept free of Panda3D so that the CLI parses fast."""

from __future__ import annotations

import argparse
from pathlib import Path

from client.lobby.layout import LOBBY_PATH


def parse_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 1280x720, not {text!r}") from None
    if not (16 <= width <= 8192 and 16 <= height <= 8192):
        raise argparse.ArgumentTypeError(f"size {text} out of range 16..8192")
    return width, height


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--server", default="http://127.0.0.1:8000", help="the branch server")
    parser.add_argument("--user", help="log in as this customer")
    parser.add_argument("--lang", choices=("en", "zh"), default=None,
                        help="the language you are served in: the digital assistant's voice, "
                             "the flow's texts (default: the branch's)")
    parser.add_argument("--password", help="the customer's password")
    parser.add_argument("--offscreen", action="store_true",
                        help="render without a window (needs --screenshot) and exit")
    parser.add_argument("--screenshot", type=Path, metavar="FILE.png")
    parser.add_argument("--size", type=parse_size, default=(1280, 720), metavar="WxH")
    parser.add_argument("--microphone", default="alsa:default", metavar="FORMAT:DEVICE",
                        help="what the call sends as your voice (none: silence; default "
                             "%(default)s, silence when there is no such device)")
    parser.add_argument("--speaker", default="alsa:default", metavar="FORMAT:DEVICE",
                        help="where the call's voice plays (none: captions only)")
    parser.add_argument("--layout", type=Path, default=LOBBY_PATH, help=argparse.SUPPRESS)
