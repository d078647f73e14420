"""Start a real ``vbank serve`` process: for the tests, the benchmarks and the scenario runner."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

READY = re.compile(r"vbank ready on (http://\S+)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ServerProcess:
    """A running server: its URL, data directory and captured output."""

    url: str
    data: Path
    proc: subprocess.Popen[str]
    output: list[str] = field(default_factory=list)

    def login(self, username: str, password: str | None = None) -> str:
        r = httpx.post(
            f"{self.url}/api/v1/auth/login",
            json={"username": username, "password": password or username},
        )
        r.raise_for_status()
        return str(r.json()["access_token"])

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        if self.proc.poll() is None:
            if sig == signal.SIGKILL:
                # Kill the whole group: the server and its media workers die at once.
                os.killpg(self.proc.pid, signal.SIGKILL)
            else:
                self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            return self.proc.wait(5)


def start_server(data: Path, *extra: str, env: dict[str, str] | None = None,
                 timeout: float = 60, demo: bool = True) -> ServerProcess:
    """Start ``vbank serve [--demo]`` on a free loopback port and wait for its ready line."""
    port = free_port()
    cmd = [sys.executable, "-m", "vbank", "serve", "--host", "127.0.0.1", "--port", str(port),
           "--data", str(data), *(["--demo"] if demo else []), *extra]
    # The digital human's models take seconds to load per worker: only tests that talk to it
    # switch it on.
    full_env = {**os.environ, "VBANK_DIGITAL_HUMAN": "false", **(env or {})}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=full_env, start_new_session=True)
    assert proc.stdout is not None
    output: list[str] = []
    found: list[str] = []

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            output.append(line.rstrip("\n"))
            m = READY.search(line)
            if m and not found:
                found.append(m.group(1))

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + timeout
    while not found:
        if proc.poll() is not None or time.monotonic() > deadline:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            raise RuntimeError("vbank serve did not start:\n" + "\n".join(output[-40:]))
        time.sleep(0.05)
    return ServerProcess(url=found[0], data=data, proc=proc, output=output)
