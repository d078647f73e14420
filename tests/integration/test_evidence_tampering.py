"""Evidence against whoever holds the data directory but not the key (issue 18, findings 10, 11).

The attacker here works as one would: on the files and, with SQLite, on the database file
in the data directory (``sqlite3``), re-signing with a key of their own or with an old key
left in the data directory. The branch is driven through what an operator uses: the server
seals calls left unsealed when it starts, and ``vbank evidence verify|export|rotate-key``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import socket
import sqlite3
import stat
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient

from tests.integration.test_evidence import add_session
from tests.integration.timestamp_authority import TimestampAuthority
from vbank.cli import main
from vbank.config import Settings, async_url
from vbank.store.db import make_engine, sessionmaker, upgrade

GENESIS = "0" * 64


@pytest.fixture
def vault(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The key's folder, outside the data directory (``VBANK_EVIDENCE_KEY``)."""
    monkeypatch.setenv("VBANK_EVIDENCE_KEY", str(tmp_path / "vault" / "branch-ed25519.pem"))
    return tmp_path / "vault"


def migrated(data: Path) -> Settings:
    settings = Settings(data=data, demo=True, media_workers=0, digital_human=False)
    upgrade(settings.database_url)
    return settings


def seal_at_start(settings: Settings, *sids: str) -> None:
    """Calls that ended and were never sealed; the server seals them when it starts."""
    async def add() -> None:
        engine = make_engine(settings.database_url)
        try:
            for sid in sids:
                await add_session(sessionmaker(engine), settings.data, sid, f"VB-{sid}")
        finally:
            await engine.dispose()

    asyncio.run(add())
    from vbank.api.app import create_app

    with TestClient(create_app(settings)):
        pass


def vbank(*args: str, data: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    code = main([*args, "--data", str(data)])
    return code, capsys.readouterr().out.splitlines()


def db(data: Path) -> sqlite3.Connection:
    return sqlite3.connect(data / "vbank.db")


def tables(data: Path) -> set[str]:
    with db(data) as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def key_id(key: Ed25519PrivateKey) -> str:
    return hashlib.sha256(key.public_key().public_bytes_raw()).hexdigest()[:16]


# ------------------------------------------------------------------ the attacker
def forge_transcript(data: Path, sid: str, key: Ed25519PrivateKey) -> None:
    """Rewrite a sealed transcript, then its manifest, chain entry and anchor, re-signed."""
    folder = data / "evidence" / sid
    transcript = json.loads((folder / "transcript.json").read_bytes())
    transcript[1]["text"] = "No, I do not agree."
    forged = (json.dumps(transcript, sort_keys=True, indent=2, ensure_ascii=False)
              + "\n").encode()
    (folder / "transcript.json").write_bytes(forged)
    manifest = json.loads((folder / "manifest.json").read_bytes())
    for item in manifest["items"]:
        if item["path"].endswith("/transcript.json"):
            item["sha256"], item["bytes"] = hashlib.sha256(forged).hexdigest(), len(forged)
    raw = json.dumps(manifest, sort_keys=True, separators=(",", ":"),
                     ensure_ascii=False).encode()
    (folder / "manifest.json").write_bytes(raw)
    manifest_sha = hashlib.sha256(raw).hexdigest()
    with db(data) as conn:
        seq, prev = conn.execute("SELECT seq, prev_sha256 FROM evidence WHERE session_id = ?",
                                 (sid,)).fetchone()
        chain = hashlib.sha256(f"vbank-evidence:{seq}:{prev}:{manifest_sha}".encode()).hexdigest()
        signature = key.sign(chain.encode()).hex()
        conn.execute("UPDATE evidence SET manifest_sha256 = ?, chain_sha256 = ?, signature = ? "
                     "WHERE seq = ?", (manifest_sha, chain, signature, seq))
        names = tables(data)
        columns = {r[1] for r in conn.execute("PRAGMA table_info(evidence)")}
        if "key_id" in columns:
            conn.execute("UPDATE evidence SET key_id = ? WHERE seq = ?", (key_id(key), seq))
        if "evidence_anchors" in names:  # the SQLite file is in the data directory too
            conn.execute("UPDATE evidence_anchors SET chain_sha256 = ?, signature = ?, "
                         "key_id = ? WHERE seq = ?", (chain, signature, key_id(key), seq))
    public = data / "keys" / "branch-ed25519.pub.pem"  # where verify used to find the key
    if public.exists():
        public.write_bytes(key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))


def key_in_the_data_directory(data: Path) -> Ed25519PrivateKey | None:
    path = data / "keys" / "branch-ed25519.pem"
    if not path.exists():
        return None
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    return key


# ------------------------------------------------------------------ forgery
def test_a_transcript_forged_and_re_signed_by_the_data_directorys_holder_is_detected(
        tmp_path: Path, vault: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = migrated(tmp_path / "data")
    seal_at_start(settings, "s_forged")
    assert vbank("evidence", "verify", "s_forged", data=settings.data, capsys=capsys) == (
        0, ["intact"])
    # the branch's key if the data directory holds it, else one of the attacker's own
    key = key_in_the_data_directory(settings.data) or Ed25519PrivateKey.generate()
    forge_transcript(settings.data, "s_forged", key)
    code, lines = vbank("evidence", "verify", "s_forged", data=settings.data, capsys=capsys)
    assert code == 1
    assert lines == [
        f"signature: entry 1 is signed with key {key_id(key)}, which is not in the keyring",
        f"signature: the anchor of entry 1 is signed with key {key_id(key)}, which is not in "
        f"the keyring"]
    assert not (settings.data / "keys").exists()


def test_an_old_key_left_in_the_data_directory_cannot_sign_after_its_rotation(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    # A branch that kept its key in the data directory (the demo's default) ...
    monkeypatch.delenv("VBANK_EVIDENCE_KEY", raising=False)
    settings = migrated(tmp_path / "data")
    seal_at_start(settings, "s_before")
    stolen = key_in_the_data_directory(settings.data)
    assert stolen is not None
    # ... moves it out as the README says: keyring copied, a new key made by rotation
    vault = tmp_path / "vault"
    vault.mkdir(mode=0o700)
    shutil.copy(settings.data / "keys" / "evidence-keyring.json", vault)
    monkeypatch.setenv("VBANK_EVIDENCE_KEY", str(vault / "branch-ed25519.pem"))
    code, lines = vbank("evidence", "rotate-key", data=settings.data, capsys=capsys)
    assert code == 0 and lines[0] == f"retired key {key_id(stolen)} after entry 1"
    shutil.rmtree(settings.data / "keys")
    seal_at_start(migrated(settings.data), "s_after")
    assert vbank("evidence", "verify", "--all", data=settings.data, capsys=capsys) == (
        0, ["intact (2 entries)"])

    forge_transcript(settings.data, "s_after", stolen)  # with a copy taken before the move
    code, lines = vbank("evidence", "verify", "s_after", data=settings.data, capsys=capsys)
    assert code == 1
    assert lines == [
        f"signature: entry 2 is signed with key {key_id(stolen)}, retired after entry 1",
        f"signature: the anchor of entry 2 is signed with key {key_id(stolen)}, retired after "
        f"entry 1"]


def test_a_key_file_others_may_read_is_refused_at_start(
        tmp_path: Path, vault: Path) -> None:
    settings = migrated(tmp_path / "data")
    seal_at_start(settings)  # makes the key
    key = vault / "branch-ed25519.pem"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    key.chmod(0o644)
    from vbank.api.app import create_app
    from vbank.domain.evidence import EvidenceError

    with pytest.raises(EvidenceError, match=r"may be read by others \(mode 0644\): chmod 600"), \
            TestClient(create_app(settings)):
        pass


# ------------------------------------------------------------------ a cut chain, --all
def test_a_chain_cut_at_its_end_is_tampering_not_a_session_never_sealed(
        tmp_path: Path, vault: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = migrated(tmp_path / "data")
    seal_at_start(settings, "s_1", "s_2", "s_3")
    # The newest entry and its folder go; the anchors stay (the role that can delete from
    # the chain cannot delete anchors: README, Evidence).
    with db(settings.data) as conn:
        conn.execute("DELETE FROM evidence WHERE seq = 3")
    shutil.rmtree(settings.data / "evidence" / "s_3")
    code, lines = vbank("evidence", "verify", "s_3", data=settings.data, capsys=capsys)
    assert code == 1
    assert lines == ["chain: truncated after entry 2 (the anchors go on to entry 3)",
                     "anchor: entry 3 (session s_3) was sealed and is missing from the chain",
                     "missing: evidence/s_3/manifest.json"]
    code, lines = vbank("evidence", "verify", "--all", data=settings.data, capsys=capsys)
    assert code == 1 and lines == [
        "chain: truncated after entry 2 (the anchors go on to entry 3)",
        "anchor: entry 3 (session s_3) was sealed and is missing from the chain"]
    assert vbank("evidence", "verify", "s_2", data=settings.data, capsys=capsys) == (
        0, ["intact"])


def test_a_seal_after_the_chain_was_cut_fails_instead_of_writing_over_the_cut(
        tmp_path: Path, vault: Path) -> None:
    from vbank.domain.evidence import EvidenceError
    from vbank.store.evidence import seal_session
    from vbank.store.evidence_keys import signing_key

    settings = migrated(tmp_path / "data")
    seal_at_start(settings, "s_1", "s_2")
    with db(settings.data) as conn:
        conn.execute("DELETE FROM evidence WHERE seq = 2")

    async def seal() -> None:
        engine = make_engine(settings.database_url)
        try:
            await add_session(sessionmaker(engine), settings.data, "s_3", "VB-3")
            await seal_session(sessionmaker(engine), settings.data, "s_3",
                               signing_key(settings.evidence_key_path,
                                           settings.evidence_keyring_path))
        finally:
            await engine.dispose()

    with pytest.raises(EvidenceError, match=r"the chain was cut \(entry 2, session s_2, is "
                                            r"anchored but missing\)"):
        asyncio.run(seal())


def test_verify_all_walks_the_whole_chain_and_prints_each_problem(
        tmp_path: Path, vault: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = migrated(tmp_path / "data")
    seal_at_start(settings, "s_1", "s_2", "s_3")
    assert vbank("evidence", "verify", "--all", data=settings.data, capsys=capsys) == (
        0, ["intact (3 entries)"])
    (settings.data / "snapshots/s_1/face-1.jpg").write_bytes(b"another face")
    (settings.data / "signatures/s_3/signature.png").unlink()
    code, lines = vbank("evidence", "verify", "--all", data=settings.data, capsys=capsys)
    assert code == 1 and len(lines) == 2
    assert lines[0].startswith("changed: snapshots/s_1/face-1.jpg (sha256 ")
    assert lines[1] == "missing: signatures/s_3/signature.png"
    assert main(["evidence", "verify", "--data", str(settings.data)]) == 2  # neither
    assert "verify takes a SESSION_ID or --all" in capsys.readouterr().err


# ------------------------------------------------------------------ RFC 3161 timestamps
@pytest.fixture
def tsa(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TimestampAuthority]:
    with TimestampAuthority() as authority:
        monkeypatch.setenv("VBANK_TSA_URL", authority.url)
        monkeypatch.setenv("VBANK_TSA_CERT",
                           str(authority.write_certificate(tmp_path / "tsa.pem")))
        yield authority


def anchor_row(data: Path, seq: int) -> tuple[str, bytes]:
    with db(data) as conn:
        chain, token = conn.execute("SELECT chain_sha256, timestamp FROM evidence_anchors "
                                    "WHERE seq = ?", (seq,)).fetchone()
    return chain, token


def set_anchor(data: Path, seq: int, **values: object) -> None:
    with db(data) as conn:
        for column, value in values.items():
            conn.execute(f"UPDATE evidence_anchors SET {column} = ? WHERE seq = ?",
                         (value, seq))


def stamp(authority: TimestampAuthority, message: bytes) -> bytes:
    from rfc3161_client import HashAlgorithm, TimestampRequestBuilder

    request = TimestampRequestBuilder().data(message).hash_algorithm(HashAlgorithm.SHA256)
    return authority.respond(request.build().as_bytes())


def test_each_seal_is_timestamped_by_the_authority_and_a_changed_anchor_is_found(
        tmp_path: Path, vault: Path, tsa: TimestampAuthority,
        capsys: pytest.CaptureFixture[str]) -> None:
    from rfc3161_client import decode_timestamp_response

    settings = migrated(tmp_path / "data")
    seal_at_start(settings, "s_stamped")
    assert tsa.requests == 1
    chain, token = anchor_row(settings.data, 1)
    stamped = decode_timestamp_response(token)
    assert stamped.tst_info.message_imprint.message == bytes.fromhex(chain)
    assert vbank("evidence", "verify", "s_stamped", data=settings.data, capsys=capsys) == (
        0, ["intact"])

    set_anchor(settings.data, 1, chain_sha256="f" * 64)  # the anchor, rewritten
    code, lines = vbank("evidence", "verify", "s_stamped", data=settings.data, capsys=capsys)
    assert code == 1 and lines == ["anchor: entry 1 does not match its anchor",
                                   "signature: invalid for the anchor of entry 1"]
    set_anchor(settings.data, 1, chain_sha256=chain)

    with db(settings.data) as conn:
        message = "vbank-evidence:{}:{}:{}".format(*conn.execute(
            "SELECT seq, prev_sha256, manifest_sha256 FROM evidence").fetchone()).encode()
    assert hashlib.sha256(message).hexdigest() == chain
    set_anchor(settings.data, 1, timestamp=stamp(tsa, b"another message"))
    code, lines = vbank("evidence", "verify", "s_stamped", data=settings.data, capsys=capsys)
    assert code == 1 and lines == [
        "timestamp: the token of entry 1 stamps another hash than the entry's chain hash"]
    with TimestampAuthority() as stranger:  # the right hash, by an authority not configured
        set_anchor(settings.data, 1, timestamp=stamp(stranger, message))
    code, lines = vbank("evidence", "verify", "s_stamped", data=settings.data, capsys=capsys)
    assert code == 1 and len(lines) == 1
    assert lines[0].startswith("timestamp: the token of entry 1 is not signed by the "
                               "configured authority (")
    set_anchor(settings.data, 1, timestamp=token)
    assert vbank("evidence", "verify", "--all", data=settings.data, capsys=capsys) == (
        0, ["intact (1 entries)"])


def test_an_authority_that_does_not_answer_fails_the_seal_and_leaves_nothing(
        tmp_path: Path, vault: Path, tsa: TimestampAuthority) -> None:
    from vbank.domain.timestamps import TimestampError
    from vbank.store.evidence import seal_session
    from vbank.store.evidence_keys import signing_key
    from vbank.store.timestamps import authority

    settings = migrated(tmp_path / "data")
    stamper = authority(Settings(data=settings.data))
    assert stamper is not None

    async def seal() -> bool:
        engine = make_engine(settings.database_url)
        try:
            key = signing_key(settings.evidence_key_path, settings.evidence_keyring_path)
            entry = await seal_session(sessionmaker(engine), settings.data, "s_t", key,
                                       stamp=stamper.stamp)
            return entry is not None
        finally:
            await engine.dispose()

    async def add() -> None:
        engine = make_engine(settings.database_url)
        await add_session(sessionmaker(engine), settings.data, "s_t", "VB-1")
        await engine.dispose()

    asyncio.run(add())
    tsa.refuse = True
    with pytest.raises(TimestampError, match=f"timestamp authority {tsa.url} answered 503"):
        asyncio.run(seal())
    assert [p.name for p in (settings.data / "evidence").iterdir()] == []
    with db(settings.data) as conn:
        assert conn.execute("SELECT count(*) FROM evidence").fetchone() == (0,)
    tsa.refuse = False  # the retry, once the authority is back
    assert asyncio.run(seal())
    assert anchor_row(settings.data, 1)[1] is not None


def test_an_old_entry_re_sealed_with_a_stolen_retired_key_carries_a_later_timestamp(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tsa: TimestampAuthority,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("VBANK_EVIDENCE_KEY", raising=False)
    settings = migrated(tmp_path / "data")
    seal_at_start(settings, "s_old")
    stolen = key_in_the_data_directory(settings.data)
    assert stolen is not None
    vault = tmp_path / "vault"
    vault.mkdir(mode=0o700)
    shutil.copy(settings.data / "keys" / "evidence-keyring.json", vault)
    monkeypatch.setenv("VBANK_EVIDENCE_KEY", str(vault / "branch-ed25519.pem"))
    assert vbank("evidence", "rotate-key", data=settings.data, capsys=capsys)[0] == 0
    # Entry 1 was the old key's to sign: re-signed with it, it passes the keyring. The
    # attacker rewrites everything in the SQLite file, and gets a token for the new hash
    # from the same public authority; a token cannot be dated back.
    forge_transcript(settings.data, "s_old", stolen)
    tsa.clock = lambda: datetime.now(UTC) + timedelta(days=1)  # the attacker comes back later
    with db(settings.data) as conn:
        message = conn.execute("SELECT seq, prev_sha256, manifest_sha256 FROM evidence"
                               ).fetchone()
    set_anchor(settings.data, 1,
               timestamp=stamp(tsa, "vbank-evidence:{}:{}:{}".format(*message).encode()))
    code, lines = vbank("evidence", "verify", "s_old", data=settings.data, capsys=capsys)
    assert code == 1 and len(lines) == 1
    assert lines[0].startswith("timestamp: entry 1 was stamped at ")
    assert f", after its key {key_id(stolen)} was retired (" in lines[0]


# ------------------------------------------------------------------ files (finding 10)
def test_sealed_files_are_private_whatever_the_umask(tmp_path: Path, vault: Path) -> None:
    settings = migrated(tmp_path / "data")
    old = os.umask(0o022)
    try:
        seal_at_start(settings, "s_private")
    finally:
        os.umask(old)
    folder = settings.data / "evidence"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o750
    assert stat.S_IMODE((folder / "s_private").stat().st_mode) == 0o750
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (folder / "s_private").iterdir()}
    assert modes == dict.fromkeys(["session.json", "transcript.json", "timeline.json",
                                   "qc.json", "manifest.json"], 0o640)


def test_serve_writes_nothing_others_may_read(tmp_path: Path) -> None:
    from vbank.serverproc import start_server

    old = os.umask(0o022)  # the usual umask, under which files come out 0644
    try:
        server = start_server(tmp_path / "data", env={
            "VBANK_EVIDENCE_KEY": str(tmp_path / "vault" / "branch-ed25519.pem"),
            "VBANK_MEDIA_WORKERS": "0"})
        server.stop()
    finally:
        os.umask(old)
    readable = [str(p.relative_to(tmp_path)) for p in (tmp_path / "data").rglob("*")
                if p.stat().st_mode & 0o007]
    assert (tmp_path / "data" / "vbank.db").is_file() and readable == []


def link_in_place(data: Path, relative: str, target: Path) -> None:
    (data / relative).unlink()
    (data / relative).symlink_to(target)


def test_export_refuses_an_item_that_is_a_symbolic_link(
        tmp_path: Path, vault: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = migrated(tmp_path / "data")
    seal_at_start(settings, "s_link")
    secret = tmp_path / "outside" / "secret.txt"
    secret.parent.mkdir()
    secret.write_bytes(b"what the exporting user may read, never evidence")
    leg = "recordings/s_link/customer-1.webm"
    link_in_place(settings.data, leg, secret)
    out = tmp_path / "package"
    code, lines = vbank("evidence", "export", "s_link", str(out), data=settings.data,
                        capsys=capsys)
    assert code == 1
    assert lines[0] == f"linked: {leg} is a symbolic link, not copied (tampering)"
    assert not (out / leg).exists() and not (out / leg).is_symlink()
    assert all(b"never evidence" not in p.read_bytes() for p in out.rglob("*") if p.is_file())
    code, lines = vbank("evidence", "verify", "s_link", data=settings.data, capsys=capsys)
    assert (code, lines) == (1, [f"linked: {leg} is a symbolic link (an item is never one: "
                                 f"tampering)"])


def test_a_folder_swapped_for_a_link_to_identical_bytes_is_still_tampering(
        tmp_path: Path, vault: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = migrated(tmp_path / "data")
    seal_at_start(settings, "s_dir")
    elsewhere = tmp_path / "elsewhere"
    shutil.move(settings.data / "snapshots" / "s_dir", elsewhere)  # same bytes, moved away
    (settings.data / "snapshots" / "s_dir").symlink_to(elsewhere)
    code, lines = vbank("evidence", "verify", "s_dir", data=settings.data, capsys=capsys)
    assert (code, lines) == (1, ["linked: snapshots/s_dir/face-1.jpg is a symbolic link (an "
                                 "item is never one: tampering)"])


# ------------------------------------------------------------------ rotation, migrations
def test_rotation_keeps_old_entries_verifiable_and_the_old_key_file_is_refused(
        tmp_path: Path, vault: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from vbank.domain.evidence import EvidenceError
    from vbank.store.evidence_keys import signing_key

    settings = migrated(tmp_path / "data")
    seal_at_start(settings, "s_1", "s_2")
    old_copy = tmp_path / "old.pem"
    shutil.copy(vault / "branch-ed25519.pem", old_copy)
    code, lines = vbank("evidence", "rotate-key", data=settings.data, capsys=capsys)
    assert code == 0 and lines[0].endswith("after entry 2") and lines[1].startswith("new key ")
    assert stat.S_IMODE((vault / "branch-ed25519.pem").stat().st_mode) == 0o600
    seal_at_start(settings, "s_3")
    assert vbank("evidence", "verify", "--all", data=settings.data, capsys=capsys) == (
        0, ["intact (3 entries)"])
    with db(settings.data) as conn:
        ids = [r[0] for r in conn.execute("SELECT key_id FROM evidence ORDER BY seq")]
    assert ids[0] == ids[1] != ids[2]
    with pytest.raises(EvidenceError, match="was retired after entry 2"):
        signing_key(old_copy, vault / "evidence-keyring.json")


def test_the_migrations_make_the_evidence_tables_the_models_describe(tmp_path: Path) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy import create_engine

    from vbank.store.models import Base

    settings = migrated(tmp_path / "data")
    engine = create_engine(f"sqlite:///{settings.data / 'vbank.db'}")
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    ours = [d for d in diffs if "evidence" in repr(d)]
    assert ours == []


# ------------------------------------------------------------------ PostgreSQL
POSTGRES = os.environ.get("VBANK_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def psql(database: str, sql: str) -> None:
    done = subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", database,
                           "-v", "ON_ERROR_STOP=1", "-c", sql], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.fixture
def postgres() -> Iterator[str]:
    """A database of the test's own (made by its owner), and the URL of a server role that
    may only read and insert anchors."""
    try:
        socket.create_connection(("127.0.0.1", 5432), timeout=1).close()
    except OSError:
        pytest.skip("PostgreSQL is not running here")
    name = f"vbank_t_{uuid.uuid4().hex[:8]}"
    psql("test", f"CREATE DATABASE {name}")
    psql("test", f"CREATE ROLE {name}_server LOGIN")
    base = POSTGRES.rsplit("/", 1)[0]
    try:
        upgrade(async_url(f"{base}/{name}"))  # as the owner, as README says
        psql(name, f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO "
                   f"{name}_server; GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO "
                   f"{name}_server; REVOKE UPDATE, DELETE, TRUNCATE ON evidence_anchors "
                   f"FROM {name}_server")
        server = base.replace("postgres@", f"{name}_server@") + f"/{name}"
        yield server
    finally:
        psql("test", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        psql("test", f"DROP ROLE IF EXISTS {name}_server")


def test_on_postgresql_the_servers_role_cannot_remove_an_anchor_so_a_cut_shows(
        tmp_path: Path, vault: Path, tsa: TimestampAuthority, postgres: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    from sqlalchemy import text
    from sqlalchemy.exc import ProgrammingError

    settings = Settings(data=tmp_path / "data", db=postgres, demo=True, media_workers=0,
                        digital_human=False)
    seal_at_start(settings, "s_pg1", "s_pg2")
    assert tsa.requests == 2
    storage = ["--db", postgres, "--data", str(settings.data)]
    assert main(["evidence", "verify", "--all", *storage]) == 0
    assert capsys.readouterr().out == "intact (2 entries)\n"

    async def cut() -> None:  # whoever holds the server's database password
        engine = make_engine(settings.database_url)
        try:
            async with engine.begin() as conn:
                await conn.execute(text("DELETE FROM evidence WHERE seq = 2"))
            with pytest.raises(ProgrammingError, match="permission denied"):
                async with engine.begin() as conn:
                    await conn.execute(text("DELETE FROM evidence_anchors WHERE seq = 2"))
        finally:
            await engine.dispose()

    asyncio.run(cut())
    assert main(["evidence", "verify", "s_pg2", *storage]) == 1
    assert capsys.readouterr().out.splitlines()[:2] == [
        "chain: truncated after entry 1 (the anchors go on to entry 2)",
        "anchor: entry 2 (session s_pg2) was sealed and is missing from the chain"]


def test_the_auditor_api_serves_no_item_through_a_link(tmp_path: Path, vault: Path) -> None:
    from vbank.api.app import create_app

    settings = migrated(tmp_path / "data")
    seal_at_start(settings, "s_api_link")
    leg = "recordings/s_api_link/customer-1.webm"
    link_in_place(settings.data, leg, settings.data / "vbank.db")  # inside, yet not evidence
    with TestClient(create_app(settings), client=("127.0.0.1", 5000)) as client:
        login = client.post("/api/v1/auth/login", json={"username": "audrey",
                                                        "password": "audrey"})
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        r = client.get(f"/api/v1/evidence/s_api_link/files/{leg}", headers=headers)
        assert r.status_code == 409
        assert r.json() == {"detail": f"linked: {leg} is a symbolic link (an item is never "
                                      f"one: tampering)"}
        verified = client.get("/api/v1/evidence/s_api_link/verify", headers=headers).json()
        assert verified == {"intact": False, "problems": [
            f"linked: {leg} is a symbolic link (an item is never one: tampering)"]}
