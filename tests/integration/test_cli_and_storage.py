"""The command line and storage: users, migrations on SQLite and PostgreSQL, secrets."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from vbank.auth import verify_password
from vbank.config import async_url
from vbank.serverproc import free_port, start_server
from vbank.store import repo
from vbank.store.db import make_engine, sessionmaker, upgrade

POSTGRES = os.environ.get("VBANK_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def vbank(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vbank", *args], capture_output=True,
                          text=True, timeout=60, env={**os.environ, **(env or {})})


def postgres_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return True
    except OSError:
        return False


async def read_user(url: str, name: str) -> tuple[str, str, list[str], str, int] | None:
    engine = make_engine(async_url(url))
    try:
        async with sessionmaker(engine)() as db:
            user = await repo.get_user(db, name)
            if user is None:
                return None
            return user.role, user.password_hash, user.skills, user.tier, user.points
    finally:
        await engine.dispose()


def test_users_add_creates_a_user_who_can_log_in(tmp_path: Path) -> None:
    done = vbank("users", "add", "wang", "--role", "teller", "--password", "s3cret",
                 "--skills", "loan_signing,risk_assessment", "--data", str(tmp_path))
    assert done.returncode == 0, done.stderr
    again = vbank("users", "add", "wang", "--role", "teller", "--password", "x",
                  "--data", str(tmp_path))
    assert again.returncode == 1 and "already exists" in again.stderr
    bad = vbank("users", "add", "li", "--role", "teller", "--password", "x",
                "--skills", "mortgage", "--data", str(tmp_path))
    assert bad.returncode == 2 and "unknown skill" in bad.stderr
    row = asyncio.run(read_user(f"sqlite:///{tmp_path / 'vbank.db'}", "wang"))
    assert row is not None
    role, password_hash, skills, _, _ = row
    assert role == "teller" and skills == ["loan_signing", "risk_assessment"]
    assert verify_password(password_hash, "s3cret") and "s3cret" not in password_hash

    server = start_server(tmp_path)
    try:
        assert server.login("wang", "s3cret")
    finally:
        server.stop()


def test_serve_refuses_the_demo_secret_outside_demo(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "VBANK_SECRET"}
    done = subprocess.run([sys.executable, "-m", "vbank", "serve", "--data", str(tmp_path),
                           "--port", "1"], capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 2
    assert "VBANK_SECRET" in done.stderr


def test_a_short_secret_stops_the_server_at_start(tmp_path: Path) -> None:
    env = {**os.environ, "VBANK_SECRET": "0123456789abcdef", "VBANK_DIGITAL_HUMAN": "false",
           "VBANK_MEDIA_WORKERS": "0"}  # 16 bytes
    proc = subprocess.Popen([sys.executable, "-m", "vbank", "serve", "--data", str(tmp_path),
                             "--port", str(free_port())], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
    try:
        _, stderr = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:  # it started
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail("vbank serve started with a 16-byte VBANK_SECRET")
    assert proc.returncode == 2
    assert "vbank: VBANK_SECRET is 16 bytes; it must be at least 32 " \
           "(e.g. openssl rand -hex 32)" in stderr
    # a long enough one starts; a short one is let through with --demo (a demonstration)
    for secret, extra in (("k" * 32, ()), ("short", ("--demo",))):
        started = start_server(tmp_path / secret, *extra, demo=False,
                               env={"VBANK_SECRET": secret, "VBANK_MEDIA_WORKERS": "0"})
        assert started.stop() == 0


def test_db_upgrade_is_idempotent_on_sqlite(tmp_path: Path) -> None:
    for _ in range(2):
        done = vbank("db", "upgrade", "--data", str(tmp_path))
        assert done.returncode == 0, done.stderr
    assert (tmp_path / "vbank.db").is_file()


@pytest.mark.skipif(not postgres_reachable(), reason="PostgreSQL is not running here")
def test_migrations_and_users_on_postgresql() -> None:
    schema_db = f"vbank_t_{uuid.uuid4().hex[:8]}"
    admin = subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-c",
                            f"CREATE DATABASE {schema_db}"], capture_output=True, text=True)
    assert admin.returncode == 0, admin.stderr
    url = POSTGRES.rsplit("/", 1)[0] + "/" + schema_db
    try:
        done = vbank("db", "upgrade", "--db", url)
        assert done.returncode == 0, done.stderr
        upgrade(async_url(url))  # a second run changes nothing
        done = vbank("users", "add", "pg-user", "--role", "customer", "--password", "pw",
                     "--points", "40", "--tier", "gold", "--db", url)
        assert done.returncode == 0, done.stderr
        row = asyncio.run(read_user(url, "pg-user"))
        assert row is not None and row[0] == "customer" and row[3:] == ("gold", 40)
    finally:
        subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-c",
                        f"DROP DATABASE IF EXISTS {schema_db} WITH (FORCE)"],
                       capture_output=True)


def test_scenario_check_names_the_file_and_line_of_a_mistake(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("scenario: x\nservice: general_enquiry\nactors:\n  c: {kind: customer}\n"
                   "steps:\n  - c: fly\n")
    done = vbank("scenario", "check", str(bad))
    assert done.returncode == 2
    assert f"{bad}:6: unknown customer action 'fly'" in done.stderr
    good = Path(__file__).resolve().parents[1] / "fixtures" / "scenarios" / \
        "loan-signing-digital-human.yaml"
    assert vbank("scenario", "check", str(good)).returncode == 0
