"""Several nodes started at once on one PostgreSQL database, each with ``--demo``: they
seed the demo users, items and prize pools one after the other and all come up. Skipped,
saying why, where PostgreSQL is absent."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from vbank.bench.mall import postgres_database, postgres_unreachable
from vbank.serverproc import start_server


def test_nodes_started_at_once_with_demo_data_all_come_up(tmp_path: Path) -> None:
    why = postgres_unreachable()
    if why:
        pytest.skip(why)
    data = tmp_path / "data"
    with postgres_database("vbank_seed") as url:
        subprocess.run([sys.executable, "-m", "vbank", "db", "upgrade", "--db", url,
                        "--data", str(data)], check=True, capture_output=True)
        with ThreadPoolExecutor(3) as pool:
            starting = [pool.submit(start_server, data, "--db", url, timeout=120)
                        for _ in range(3)]
            servers = [s.result() for s in starting]  # raises if one did not start
        try:  # every node knows every demo user, whichever node added them
            for server in servers:
                for name in ("alice", "tina", "admin"):
                    assert server.login(name)
        finally:
            for server in servers:
                server.stop()
