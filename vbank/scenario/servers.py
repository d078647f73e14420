"""The servers a scenario run talks to: given ones, or one of the runner's own."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from vbank.scenario.actors import StepFailed
from vbank.scenario.report import Report


@dataclass
class Server:
    """One server the scenarios talk to, with an administrator signed in."""

    url: str
    admin: tuple[str, str]
    token: str = ""

    async def login(self, http: httpx.AsyncClient) -> None:
        r = await http.post(f"{self.url}/api/v1/auth/login",
                            json={"username": self.admin[0], "password": self.admin[1]})
        if r.status_code != 200:
            raise StepFailed(f"{self.url}: the administrator {self.admin[0]!r} cannot sign in "
                             f"({r.status_code}); give --admin NAME:PASSWORD")
        self.token = r.json()["access_token"]

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class OwnServer:
    """A ``vbank serve`` of the runner's own: free port, temporary data, its own admin."""

    def __init__(self, report: Report) -> None:
        self.report = report
        self.tmp = tempfile.TemporaryDirectory(prefix="vbank-scenario-")
        self.admin = ("scenario-admin", secrets.token_urlsafe(16))
        self.process: Any = None

    def start(self) -> Server:
        from vbank.serverproc import start_server

        data = Path(self.tmp.name)
        secret = secrets.token_urlsafe(32)
        env = {"VBANK_SECRET": secret, "VBANK_DIGITAL_HUMAN": "true", "VBANK_TEST_MODE": "true",
               "VBANK_MEDIA_WORKERS": os.environ.get("VBANK_MEDIA_WORKERS", "1")}
        add = subprocess.run(
            [sys.executable, "-m", "vbank", "users", "add", self.admin[0], "--role", "admin",
             "--password", self.admin[1], "--data", str(data)],
            capture_output=True, text=True, env={**os.environ, **env}, check=False)
        if add.returncode != 0:
            raise RuntimeError(f"cannot prepare the server's database: {add.stderr.strip()}")
        self.report.status("starting a server and loading the speech models")
        self.process = start_server(data, env=env, timeout=300, demo=False)
        self.report.line(f"server {self.process.url} (temporary data in {data})")
        return Server(self.process.url, self.admin)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
        self.tmp.cleanup()
