"""Benchmarks behind ``vbank bench NAME``: each prints a table and JSON figures."""

from __future__ import annotations

from pathlib import Path


def run_bench(name: str, json_out: Path | None, rest: list[str]) -> int:
    if name == "voice-latency":
        from vbank.bench.voice import main as voice_main

        return voice_main(rest, json_out)
    if name == "queue" and "--ws" in rest:
        from vbank.bench.queue_ws import main as queue_ws_main

        return queue_ws_main([a for a in rest if a != "--ws"], json_out)
    if name == "queue":
        from vbank.bench.queue import main as queue_main

        return queue_main(rest, json_out)
    if name == "lobby-fps":
        from vbank.bench.lobby import main as lobby_main

        return lobby_main(rest, json_out)
    if name == "echo":
        from vbank.bench.echo import main as echo_main

        return echo_main(rest, json_out)
    if name == "speech":
        from vbank.bench.speech import main as speech_main

        return speech_main(rest, json_out)
    if name == "mall-race":
        from vbank.bench.mall import main as mall_main

        return mall_main(rest, json_out)
    from vbank.bench.sessions import main as sessions_main

    return sessions_main(rest, json_out)
