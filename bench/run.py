"""Run every benchmark and keep its JSON in bench/results/ (``python bench/run.py``).

The benchmarks themselves live in ``vbank/bench`` behind ``vbank bench NAME``; this script
is the one-shot way to refresh the recorded figures on a quiet machine.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
RUNS = {
    "queue": ["queue"],
    "voice-latency": ["voice-latency", "--turns", "20"],
    "sessions-2workers": ["sessions", "--sessions", "6,8,10"],
    "sessions-2workers-overload": ["sessions", "--sessions", "12,16"],
    "sessions-digital-human": ["sessions", "--kind", "digital_human", "--sessions", "4,6,8",
                               "--duration", "20"],
    "mall-race-sqlite": ["mall-race", "--db", "sqlite"],
    "mall-race-postgres": ["mall-race", "--db", "postgres"],
    "lobby-fps": ["lobby-fps"],
    "echo": ["echo"],
    "speech": ["speech"],
}


def main() -> int:
    RESULTS.mkdir(exist_ok=True)
    for name, args in RUNS.items():
        print(f"== {name}", flush=True)
        done = subprocess.run([sys.executable, "-m", "vbank", "bench", *args,
                               "--json", str(RESULTS / f"{name}.json")])
        if done.returncode:
            return done.returncode
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
