"""``vbank bench lobby-fps``: frames per second of the 3D hall offscreen, with K avatars.

The software renderer (p3tinydisplay, no GPU) draws the hall at 1280x720 while K customers
walk about it (each a primitive avatar with a name tag, turning when it meets furniture).
A frame is one ``renderFrame``, the screen is not read back.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from pathlib import Path
from typing import Any

from vbank.bench.report import report


def main(argv: list[str], json_out: Path | None) -> int:
    parser = argparse.ArgumentParser(prog="vbank bench lobby-fps")
    parser.add_argument("--avatars", default="0,10,50", help="comma-separated K values")
    parser.add_argument("--frames", type=int, default=200, help="frames timed per K")
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    from client.lobby.app import LobbyApp
    from client.lobby.avatar import build_avatar
    from client.lobby.layout import load_layout
    from client.lobby.options import parse_size
    from client.lobby.walking import Pose, blocked, step

    size = parse_size(args.size)
    layout = load_layout()
    app = LobbyApp(layout, offscreen=True, size=size)
    rng = random.Random(args.seed)
    fps: dict[str, float] = {}
    p50_ms: dict[str, float] = {}
    for count in (int(k) for k in args.avatars.split(",")):
        walkers: list[tuple[Any, Pose]] = []
        while len(walkers) < count:
            x = rng.uniform(-layout.hall.width / 2, layout.hall.width / 2)
            y = rng.uniform(-layout.hall.depth / 2, layout.teller_line())
            if blocked(layout, x, y):
                continue
            node = build_avatar(f"guest-{len(walkers)}", (rng.random(), rng.random(), 0.6, 1),
                                skin=len(walkers), hair=len(walkers), tag=f"guest {len(walkers)}")
            node.reparentTo(app.render)
            walkers.append((node, Pose(x, y, rng.uniform(0, 360))))
        frame_s: list[float] = []
        for frame in range(args.frames + 10):  # the first ten warm caches and font pages
            t0 = time.perf_counter()
            for i, (node, pose) in enumerate(walkers):
                moved = step(layout, pose, 1.0, 0.0, 1 / 60)
                if (moved.x, moved.y) == (pose.x, pose.y):  # in the way: turn aside
                    moved = Pose(pose.x, pose.y, pose.heading + rng.uniform(90, 270))
                node.setPos(moved.x, moved.y, 0)
                node.find("body").setH(moved.heading)
                walkers[i] = (node, moved)
            app.graphicsEngine.renderFrame()
            if frame >= 10:
                frame_s.append(time.perf_counter() - t0)
        fps[str(count)] = round(len(frame_s) / sum(frame_s), 1)
        p50_ms[str(count)] = round(statistics.median(frame_s) * 1000, 2)
        for node, _ in walkers:
            node.removeNode()
    app.destroy()
    report("lobby-fps", {
        "renderer": "p3tinydisplay (software, offscreen)",
        "size": f"{size[0]}x{size[1]}",
        "frames": args.frames,
        "fps": fps,
        "frame_p50_ms": p50_ms,
        "goal_fps_50_avatars": 60,
    }, json_out)
    return 0
