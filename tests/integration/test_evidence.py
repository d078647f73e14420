"""Evidence on real SQLite and real files: seal, verify, tamper, export, the CLI and the API."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import stat
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vbank.cli import main
from vbank.config import Settings
from vbank.domain.evidence import GENESIS, ChainLink, UnknownSession
from vbank.domain.keyring import Keyring
from vbank.store import evidence
from vbank.store.db import make_engine, sessionmaker, upgrade
from vbank.store.evidence_export import export_session
from vbank.store.evidence_keys import signing_key
from vbank.store.models import AuditRead, CallSession, EvidenceEntry, Recording, SessionRecord
from vbank.store.timestamps import evidence_trust

T0 = datetime(2025, 3, 4, 9, 30, tzinfo=UTC)
#: the start of a WebM file (EBML magic), then bytes standing for the media
WEBM = bytes.fromhex("1a45dfa3") + bytes(range(256)) * 8


@dataclass
class Branch:
    settings: Settings
    sessions: async_sessionmaker[AsyncSession]
    key: Ed25519PrivateKey

    @property
    def data(self) -> Path:
        return self.settings.data

    async def seal(self, session_id: str) -> EvidenceEntry | None:
        return await evidence.seal_session(self.sessions, self.data, session_id, self.key,
                                           now=T0 + timedelta(minutes=30))

    async def verify(self, session_id: str) -> tuple[bool, list[str]]:
        async with self.sessions() as db:
            result = await evidence.verify_session(db, self.data, session_id,
                                                   evidence_trust(self.settings))
        return result.intact, result.problems


def vault(data: Path) -> Path:
    """Where the tests keep the signing key: beside the data directory, not in it."""
    return data.parent / "vault" / "branch-ed25519.pem"


@pytest.fixture(autouse=True)
def key_outside_the_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # what the command line reads too (every test's data directory is tmp_path / NAME)
    monkeypatch.setenv("VBANK_EVIDENCE_KEY", str(tmp_path / "vault" / "branch-ed25519.pem"))


def migrated(data: Path, **extra: Any) -> Settings:
    settings = Settings(data=data, demo=True, media_workers=0, digital_human=False,
                        evidence_key=vault(data), **extra)
    upgrade(settings.database_url)
    return settings


def branch_key(settings: Settings) -> Ed25519PrivateKey:
    return signing_key(settings.evidence_key_path, settings.evidence_keyring_path)


def write(data: Path, relative: str, content: bytes) -> str:
    (data / relative).parent.mkdir(parents=True, exist_ok=True)
    (data / relative).write_bytes(content)
    return relative


async def add_session(sessions: async_sessionmaker[AsyncSession], data: Path, sid: str,
                      reference: str) -> None:
    """A finished loan signing: two recorded legs and a record of each kind with its files."""
    customer_leg = write(data, f"recordings/{sid}/customer-1.webm", WEBM + b"customer")
    teller_leg = write(data, f"recordings/{sid}/teller-1.webm", WEBM + b"teller")
    face = write(data, f"snapshots/{sid}/face-1.jpg", b"\xff\xd8\xff" + b"face" * 50)
    contract = b"%PDF-1.4 loan contract " + sid.encode()
    document = write(data, f"documents/{sid}/contract.pdf", contract)
    signature = write(data, f"signatures/{sid}/signature.png", b"\x89PNG" + b"ink" * 40)

    def at(s: int) -> datetime:
        return T0 + timedelta(seconds=s)

    async with sessions.begin() as db:
        db.add(CallSession(id=sid, reference=reference, customer="alice", teller="tina",
                           service="loan_signing", language="zh", state="ended",
                           outcome="completed",
                           created_at=T0, started_at=at(1), ended_at=at(90),
                           tellers=["tina"], flow="loan_signing", flow_step="sealed"))
        await db.flush()
        for role, path in (("customer", customer_leg), ("teller", teller_leg)):
            digest = hashlib.sha256((data / path).read_bytes()).hexdigest()
            db.add(Recording(session_id=sid, role=role, path=path, sha256=digest,
                             bytes=(data / path).stat().st_size, video_frames=900,
                             audio_frames=4500, duration_s=88.0, started_at=at(2)))
        rows: list[tuple[int, str, str, dict[str, object], str | None, str | None]] = [
            (5, "caption", "tina", {"speaker": "teller", "text": "Good morning."}, None, None),
            (8, "caption", "alice", {"speaker": "customer", "text": "Morning."}, None, None),
            (10, "identity", "tina", {"name": "Alice Chen", "verified": True}, None, None),
            (12, "snapshot", "system", {"face": True}, face, None),
            (20, "document", "tina", {"title": "Loan contract"}, document,
             hashlib.sha256(contract).hexdigest()),
            (30, "qc_alert", "system", {"kind": "forbidden_phrase"}, None, None),
            (40, "consent", "alice", {"text": "I confirm"}, None, None),
            (50, "signature", "alice", {"document": document}, signature, None),
            (60, "step", "system", {"step": "sealed"}, None, None),
            (61, "qc_result", "system", {"missing_disclosures": 0}, None, None),
        ]
        for seconds, kind, actor, record, file, file_sha in rows:
            db.add(SessionRecord(session_id=sid, at=at(seconds), kind=kind, actor=actor,
                                 data=record, path=file, sha256=file_sha))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return migrated(tmp_path / "data")


@pytest.fixture
async def branch(settings: Settings) -> AsyncIterator[Branch]:
    engine = make_engine(settings.database_url)
    sessions = sessionmaker(engine)
    yield Branch(settings, sessions, branch_key(settings))
    await engine.dispose()


async def sealed(branch: Branch, sid: str = "s_one", reference: str = "VB-1") -> EvidenceEntry:
    await add_session(branch.sessions, branch.data, sid, reference)
    entry = await branch.seal(sid)
    assert entry is not None
    return entry


def manifest_of(data: Path, sid: str) -> dict[str, object]:
    return json.loads((data / "evidence" / sid / "manifest.json").read_bytes())


def item_paths(data: Path, sid: str) -> list[str]:
    return [str(i["path"]) for i in manifest_of(data, sid)["items"]]  # type: ignore[attr-defined]


# ------------------------------------------------------------------ the key
def test_branch_key_is_made_once_private_and_its_public_half_kept_in_the_keyring(
        tmp_path: Path) -> None:
    settings = Settings(data=tmp_path / "data", evidence_key=tmp_path / "vault" / "k.pem")
    key = branch_key(settings)
    path = tmp_path / "vault" / "k.pem"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = branch_key(settings)
    assert again.private_bytes_raw() == key.private_bytes_raw()
    keyring = evidence_trust(settings).keyring
    assert keyring.current is not None
    assert keyring.current.public_key.public_bytes_raw() == key.public_key().public_bytes_raw()
    assert sorted(p.name for p in (tmp_path / "vault").iterdir()) == [
        "evidence-keyring.json", "k.pem"]
    assert not (tmp_path / "data").exists()  # nothing of the key in the data directory


# ------------------------------------------------------------------ sealing and verifying
async def test_sealed_session_lists_every_item_and_verifies_intact(branch: Branch) -> None:
    entry = await sealed(branch)
    assert (entry.seq, entry.prev_sha256, entry.session_id) == (1, GENESIS, "s_one")
    assert entry.manifest_path == "evidence/s_one/manifest.json"
    assert sorted(item_paths(branch.data, "s_one")) == sorted([
        "evidence/s_one/session.json", "evidence/s_one/transcript.json",
        "evidence/s_one/timeline.json", "evidence/s_one/qc.json",
        "recordings/s_one/customer-1.webm", "recordings/s_one/teller-1.webm",
        "snapshots/s_one/face-1.jpg", "documents/s_one/contract.pdf",
        "signatures/s_one/signature.png"])
    manifest = manifest_of(branch.data, "s_one")
    # the language the customer was served in: in the session document and the summary
    session_doc = json.loads((branch.data / "evidence/s_one/session.json").read_bytes())
    assert session_doc["language"] == "zh"
    assert manifest["summary"]["language"] == "zh"  # type: ignore[index]
    recording = next(i for i in manifest["items"]  # type: ignore[attr-defined]
                     if i["path"] == "recordings/s_one/customer-1.webm")
    assert recording["started_at"] == "2025-03-04T09:30:02+00:00"
    assert recording["role"] == "customer"
    transcript = json.loads((branch.data / "evidence/s_one/transcript.json").read_bytes())
    assert transcript == [
        {"at": "2025-03-04T09:30:05+00:00", "speaker": "teller", "text": "Good morning."},
        {"at": "2025-03-04T09:30:08+00:00", "speaker": "customer", "text": "Morning."}]
    timeline = json.loads((branch.data / "evidence/s_one/timeline.json").read_bytes())
    assert [e["kind"] for e in timeline] == ["identity", "snapshot", "document", "consent",
                                             "signature", "step"]
    assert await branch.verify("s_one") == (True, [])


async def test_one_changed_byte_in_each_item_is_detected_and_named(branch: Branch) -> None:
    await sealed(branch)
    for path in item_paths(branch.data, "s_one"):
        file = branch.data / path
        original = file.read_bytes()
        changed = bytearray(original)
        changed[len(changed) // 2] ^= 0x01
        file.write_bytes(bytes(changed))
        intact, problems = await branch.verify("s_one")
        expected = hashlib.sha256(original).hexdigest()[:12]
        actual = hashlib.sha256(changed).hexdigest()[:12]
        assert not intact
        assert problems == [f"changed: {path} (sha256 {actual}… expected {expected}…)"]
        file.write_bytes(original)
    assert await branch.verify("s_one") == (True, [])


async def test_a_changed_manifest_is_detected(branch: Branch) -> None:
    await sealed(branch)
    file = branch.data / "evidence/s_one/manifest.json"
    file.write_bytes(file.read_bytes().replace(b'"outcome":"completed"', b'"outcome":"declined"'))
    intact, problems = await branch.verify("s_one")
    assert not intact and problems == ["manifest: evidence/s_one/manifest.json changed"]


async def test_a_deleted_item_is_reported_missing(branch: Branch) -> None:
    await sealed(branch)
    (branch.data / "recordings/s_one/teller-1.webm").unlink()
    (branch.data / "evidence/s_one/transcript.json").unlink()
    intact, problems = await branch.verify("s_one")
    assert not intact
    assert problems == ["missing: evidence/s_one/transcript.json",
                        "missing: recordings/s_one/teller-1.webm"]


async def test_a_deleted_manifest_is_reported_missing(branch: Branch) -> None:
    await sealed(branch)
    (branch.data / "evidence/s_one/manifest.json").unlink()
    assert await branch.verify("s_one") == (False,
                                            ["missing: evidence/s_one/manifest.json"])


async def test_two_entries_swapped_in_the_chain_are_detected(branch: Branch) -> None:
    for n in (1, 2, 3):
        await sealed(branch, f"s_{n}", f"VB-{n}")
    assert [await branch.verify(f"s_{n}") for n in (1, 2, 3)] == [(True, [])] * 3
    columns = ("session_id", "service", "sealed_at", "manifest_path", "manifest_sha256",
               "prev_sha256", "chain_sha256", "signature")
    async with branch.sessions.begin() as db:
        rows = {e.seq: {c: getattr(e, c) for c in columns}
                for e in (await db.execute(select(EvidenceEntry))).scalars()}
        # entries 1 and 2 trade places; the session ids travel with them
        await db.execute(update(EvidenceEntry).where(EvidenceEntry.seq == 1)
                         .values(session_id="moving"))
        await db.execute(update(EvidenceEntry).where(EvidenceEntry.seq == 2).values(**rows[1]))
        await db.execute(update(EvidenceEntry).where(EvidenceEntry.seq == 1).values(**rows[2]))
    intact, problems = await branch.verify("s_3")
    assert not intact
    assert problems == ["chain: entry 1 does not match its hash",
                        "chain: entry 1 does not start the chain",
                        "chain: entry 2 does not match its hash",
                        "chain: entry 2 does not follow entry 1",
                        "chain: entry 3 does not follow entry 2",
                        "anchor: entry 1 does not match its anchor",
                        "anchor: entry 2 does not match its anchor"]
    assert not (await branch.verify("s_1"))[0]


async def test_a_deleted_chain_entry_is_a_gap(branch: Branch) -> None:
    for n in (1, 2, 3):
        await sealed(branch, f"s_{n}", f"VB-{n}")
    async with branch.sessions.begin() as db:
        await db.delete(await db.get(EvidenceEntry, 2))
    assert await branch.verify("s_3") == (False, [
        "chain: entry 2 is missing",
        "anchor: entry 2 (session s_2) was sealed and is missing from the chain"])
    assert await branch.verify("s_1") == (True, [])


async def test_a_re_signed_entry_with_another_key_is_detected(branch: Branch) -> None:
    await sealed(branch)
    forger = Ed25519PrivateKey.generate()
    async with branch.sessions.begin() as db:
        entry = await db.get(EvidenceEntry, 1)
        assert entry is not None
        entry.signature = forger.sign(entry.chain_sha256.encode()).hex()
    assert await branch.verify("s_one") == (False, ["signature: invalid for entry 1",
                                                    "anchor: entry 1 does not match its anchor"])


async def test_sealing_the_same_session_again_returns_the_same_entry(branch: Branch) -> None:
    first = await sealed(branch)
    again = await branch.seal("s_one")
    assert again is not None
    assert (again.seq, again.chain_sha256) == (first.seq, first.chain_sha256)
    async with branch.sessions() as db:
        assert await db.scalar(select(func.count()).select_from(EvidenceEntry)) == 1
    assert await branch.verify("s_one") == (True, [])


async def test_unknown_sessions_are_not_sealed_nor_verified(branch: Branch) -> None:
    assert await branch.seal("s_never") is None
    with pytest.raises(UnknownSession, match="no sealed evidence for session s_never"):
        await branch.verify("s_never")


async def test_sessions_sealed_at_once_get_consecutive_entries(branch: Branch) -> None:
    for n in range(4):
        await add_session(branch.sessions, branch.data, f"s_{n}", f"VB-{n}")
    entries = await asyncio.gather(*(branch.seal(f"s_{n}") for n in (0, 1, 2, 3, 1, 2)))
    assert sorted({e.seq for e in entries if e}) == [1, 2, 3, 4]
    assert entries[1] and entries[4] and entries[1].seq == entries[4].seq
    for n in range(4):
        assert await branch.verify(f"s_{n}") == (True, [])


async def test_two_nodes_sealing_at_once_retry_on_the_taken_number(
        branch: Branch, monkeypatch: pytest.MonkeyPatch) -> None:
    # Two nodes share the database but not a lock: one insert loses the number and retries.
    monkeypatch.setattr(evidence, "_seal_lock", asyncio.Lock)
    for n in range(3):
        await add_session(branch.sessions, branch.data, f"s_{n}", f"VB-{n}")
    entries = await asyncio.gather(*(branch.seal(f"s_{n}") for n in range(3)))
    assert sorted(e.seq for e in entries if e) == [1, 2, 3]
    for n in range(3):
        assert await branch.verify(f"s_{n}") == (True, [])


async def test_a_seal_that_read_a_stale_chain_head_takes_the_next_number(
        branch: Branch, monkeypatch: pytest.MonkeyPatch) -> None:
    await sealed(branch, "s_a", "VB-a")
    await add_session(branch.sessions, branch.data, "s_b", "VB-b")
    real = evidence.next_link
    stale = [True]

    def next_link(last: ChainLink | None, manifest_sha256: str,
                  key: Ed25519PrivateKey) -> ChainLink:
        if stale:  # the first try saw the chain before another node's seal committed
            stale.clear()
            last = None
        return real(last, manifest_sha256, key)

    monkeypatch.setattr(evidence, "next_link", next_link)
    entry = await branch.seal("s_b")
    assert entry is not None and entry.seq == 2 and not stale
    assert await branch.verify("s_b") == (True, [])
    assert await branch.verify("s_a") == (True, [])


async def test_export_copies_the_package_keeping_its_paths(branch: Branch,
                                                           tmp_path: Path) -> None:
    await sealed(branch)
    out = tmp_path / "export"
    async with branch.sessions() as db:
        done = await export_session(db, branch.data, "s_one", out,
                                    evidence_trust(branch.settings).keyring)
    assert done.missing == [] and done.linked == []
    for path in [*item_paths(branch.data, "s_one"), "evidence/s_one/manifest.json"]:
        assert (out / path).read_bytes() == (branch.data / path).read_bytes(), path
    keyring = Keyring.from_json((out / "keys/evidence-keyring.json").read_bytes())
    assert keyring == evidence_trust(branch.settings).keyring
    entry = json.loads((out / "evidence/s_one/chain-entry.json").read_bytes())
    assert entry["seq"] == 1 and entry["prev_sha256"] == GENESIS
    assert entry["key_id"] == keyring.keys[0].id
    assert entry["anchor"]["chain_sha256"] == entry["chain_sha256"]
    assert not list(out.glob("keys/*.pem"))


# ------------------------------------------------------------------ the command line
def seal_sync(settings: Settings, *sids: str) -> None:
    async def run() -> None:
        engine = make_engine(settings.database_url)
        branch = Branch(settings, sessionmaker(engine), branch_key(settings))
        try:
            for n, sid in enumerate(sids):
                await sealed(branch, sid, f"VB-{n}")
        finally:
            await engine.dispose()

    asyncio.run(run())


def audit_actions(settings: Settings) -> list[tuple[str, str, str | None]]:
    async def run() -> list[tuple[str, str, str | None]]:
        engine = make_engine(settings.database_url)
        try:
            async with sessionmaker(engine)() as db:
                rows = await db.execute(select(AuditRead).order_by(AuditRead.id))
                return [(r.actor, r.action, r.target) for r in rows.scalars()]
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_cli_verify_exits_0_intact_1_tampered_2_unknown(
        settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    seal_sync(settings, "s_cli")
    storage = ["--data", str(settings.data)]
    assert main(["evidence", "verify", "s_cli", *storage]) == 0
    assert capsys.readouterr().out == "intact\n"
    (settings.data / "snapshots/s_cli/face-1.jpg").write_bytes(b"another face")
    (settings.data / "signatures/s_cli/signature.png").unlink()
    assert main(["evidence", "verify", "s_cli", *storage]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("changed: snapshots/s_cli/face-1.jpg (sha256 ")
    assert lines[1] == "missing: signatures/s_cli/signature.png"
    assert main(["evidence", "verify", "s_nobody", *storage]) == 2
    assert "no sealed evidence for session s_nobody" in capsys.readouterr().err
    actions = [(action, target) for _, action, target in audit_actions(settings)]
    assert actions == [("verify", "s_cli"), ("verify", "s_cli")]


def test_cli_verify_honours_db_and_data(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "elsewhere"
    db_url = f"sqlite:///{tmp_path / 'branch.db'}"
    settings = Settings(data=data, db=db_url, evidence_key=vault(data))
    upgrade(settings.database_url)
    seal_sync(settings, "s_db")
    assert main(["evidence", "verify", "s_db", "--db", db_url, "--data", str(data)]) == 0
    assert capsys.readouterr().out == "intact\n"


def test_cli_export_writes_the_package(settings: Settings, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    seal_sync(settings, "s_out")
    out = tmp_path / "package"
    assert main(["evidence", "export", "s_out", str(out), "--data", str(settings.data)]) == 0
    assert (out / "recordings/s_out/customer-1.webm").read_bytes().startswith(WEBM)
    assert (out / "evidence/s_out/manifest.json").is_file()
    assert "exported" in capsys.readouterr().out
    assert main(["evidence", "export", "s_none", str(out), "--data", str(settings.data)]) == 2
    assert audit_actions(settings)[-1][1:] == ("export", "s_out")


# ------------------------------------------------------------------ the API
@dataclass
class Api:
    client: TestClient
    settings: Settings

    def get(self, path: str, user: str | None = None) -> Any:  # the test client's response
        return self.client.get(path, headers=bearer(self.client, user) if user else {})

    def audit_rows(self) -> list[tuple[str, str, str | None]]:
        return audit_actions(self.settings)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    # One server for the module (starting one takes seconds); tests that tamper use s_bent.
    settings = migrated(tmp_path_factory.mktemp("evidence-api") / "data")
    seal_sync(settings, "s_api", "s_other", "s_bent")
    from vbank.api.app import create_app

    with TestClient(create_app(settings), client=("127.0.0.1", 5000)) as client:
        yield Api(client, settings)


def bearer(client: TestClient, user: str) -> dict[str, str]:
    r = client.post("/api/v1/auth/login", json={"username": user, "password": user})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def test_auditor_lists_reads_verifies_and_replays(api: Api) -> None:
    data = api.settings.data
    before = len(api.audit_rows())
    listed = api.get("/api/v1/evidence", "audrey")
    assert listed.status_code == 200
    assert [(e["session_id"], e["seq"], e["reference"]) for e in listed.json()] == [
        ("s_bent", 3, "VB-2"), ("s_other", 2, "VB-1"), ("s_api", 1, "VB-0")]
    assert listed.json()[0]["service"] == "loan_signing" and listed.json()[0]["sealed_at"]

    read = api.get("/api/v1/evidence/s_api", "audrey")
    assert read.status_code == 200
    body = read.json()
    items = manifest_of(data, "s_api")["items"]
    assert {i["path"]: i["sha256"] for i in body["items"]} == {
        i["path"]: i["sha256"] for i in items}  # type: ignore[attr-defined]
    assert body["transcript"][0]["text"] == "Good morning."
    assert "consent" in [e["kind"] for e in body["timeline"]]
    assert body["qc"][0]["kind"] == "qc_alert"
    leg = next(i for i in body["items"] if i["kind"] == "recording")
    assert leg["started_at"] == "2025-03-04T09:30:02+00:00"

    assert api.get("/api/v1/evidence/s_api/verify", "audrey").json() == {
        "intact": True, "problems": []}

    video = api.get(f"/api/v1/evidence/s_api/files/{leg['path']}", "audrey")
    assert video.status_code == 200
    assert video.content == (data / leg["path"]).read_bytes()
    assert video.headers["content-type"] == "video/webm"

    assert api.audit_rows()[before:] == [
        ("audrey", "list", None), ("audrey", "read", "s_api"),
        ("audrey", "verify", "s_api"), ("audrey", "replay", "s_api")]


def test_api_verify_names_a_tampered_item(api: Api) -> None:
    write(api.settings.data, "recordings/s_bent/customer-1.webm", WEBM + b"edited")
    r = api.get("/api/v1/evidence/s_bent/verify", "audrey")
    assert r.status_code == 200 and r.json()["intact"] is False
    [problem] = r.json()["problems"]
    assert problem.startswith("changed: recordings/s_bent/customer-1.webm (sha256 ")


def test_only_listed_files_are_served(api: Api) -> None:
    write(api.settings.data, "recordings/s_api/extra.webm", WEBM)
    for path in ("recordings/s_api/extra.webm", "keys/branch-ed25519.pem", "vbank.db",
                 "../data/vbank.db", "recordings/s_other/customer-1.webm"):
        r = api.get(f"/api/v1/evidence/s_api/files/{path}", "audrey")
        assert r.status_code == 404, path
        assert "detail" in r.json()


@pytest.mark.parametrize("path", ["/api/v1/evidence/s_ghost", "/api/v1/evidence/s_ghost/verify",
                                  "/api/v1/evidence/s_ghost/files/evidence/s_ghost/qc.json"])
def test_unknown_session_is_404_with_a_json_detail(api: Api, path: str) -> None:
    r = api.get(path, "audrey")
    assert r.status_code == 404
    assert r.json() == {"detail": "no sealed evidence for session s_ghost"}


@pytest.mark.parametrize("user", ["alice", "tina", "sam", "admin"])
def test_everyone_but_auditors_gets_403_and_reads_nothing(api: Api, user: str) -> None:
    before = len(api.audit_rows())
    for path in ("/api/v1/evidence", "/api/v1/evidence/s_api",
                 "/api/v1/evidence/s_api/verify",
                 "/api/v1/evidence/s_api/files/evidence/s_api/transcript.json"):
        r = api.get(path, user)
        assert r.status_code == 403, path
        assert r.json() == {"detail": "this needs the role auditor"}
    assert len(api.audit_rows()) == before


def test_no_token_gets_401(api: Api) -> None:
    assert api.get("/api/v1/evidence").status_code == 401
    r = api.client.get("/api/v1/evidence/s_api/verify", headers={"Authorization": "Bearer x"})
    assert r.status_code == 401


def test_the_auditor_page_is_served(api: Api) -> None:
    page = api.client.get("/auditor")
    assert page.status_code == 200 and "/static/auditor.js" in page.text
    assert api.client.get("/static/auditor.js").status_code == 200


def test_the_app_makes_the_branch_key_on_first_start(tmp_path: Path) -> None:
    settings = migrated(tmp_path / "data")
    from vbank.api.app import create_app

    with TestClient(create_app(settings)):
        key = settings.evidence_key_path
        assert key.is_file() and stat.S_IMODE(os.stat(key).st_mode) == 0o600
        assert settings.evidence_keyring_path.is_file()
        assert not (settings.data / "keys").exists()


def test_opening_a_snapshot_is_logged_as_a_read(api: Api) -> None:
    before = len(api.audit_rows())
    r = api.get("/api/v1/evidence/s_other/files/snapshots/s_other/face-1.jpg", "audrey")
    assert r.status_code == 200 and r.content.startswith(b"\xff\xd8\xff")
    assert api.audit_rows()[before:] == [("audrey", "read", "s_other")]


async def test_a_stored_lone_surrogate_is_sealed_as_its_escape_and_verifies(
        branch: Branch) -> None:
    """A text stored before the socket refused lone surrogates never stops a seal."""
    await add_session(branch.sessions, branch.data, "s_odd", "VB-9")
    async with branch.sessions.begin() as db:
        db.add(SessionRecord(session_id="s_odd", at=T0 + timedelta(seconds=70),
                             kind="identity", actor="alice",
                             data={"name": "Bob\ud800", "id_number": "1"}))
    entry = await branch.seal("s_odd")
    assert entry is not None
    assert await branch.verify("s_odd") == (True, [])
    timeline = json.loads((branch.data / "evidence" / "s_odd" / "timeline.json")
                          .read_text(encoding="utf-8"))  # valid JSON, valid UTF-8
    assert {"name": "Bob\ud800", "id_number": "1"} in [r["data"] for r in timeline]


async def test_a_seal_that_fails_leaves_no_half_written_folder(branch: Branch) -> None:
    await add_session(branch.sessions, branch.data, "s_nan", "VB-8")
    async with branch.sessions.begin() as db:  # not JSON: no sealed document can hold it
        db.add(SessionRecord(session_id="s_nan", at=T0 + timedelta(seconds=70),
                             kind="answer", actor="alice", data={"value": float("nan")}))
    with pytest.raises(ValueError, match="JSON"):
        await branch.seal("s_nan")
    assert [p.name for p in (branch.data / "evidence").iterdir()] == []


def test_a_call_left_unsealed_is_sealed_at_start_and_a_failing_seal_retried_with_alerts(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = migrated(tmp_path / "data")
    engine = make_engine(settings.database_url)
    sessions = sessionmaker(engine)

    async def prepare() -> None:
        await add_session(sessions, settings.data, "s_ok", "VB-1")  # ended, never sealed
        await add_session(sessions, settings.data, "s_bad", "VB-2")
        async with sessions.begin() as db:
            db.add(SessionRecord(session_id="s_bad", at=T0 + timedelta(seconds=70),
                                 kind="answer", actor="alice", data={"value": float("nan")}))

    async def mend() -> None:
        async with sessions.begin() as db:
            await db.execute(update(SessionRecord).where(SessionRecord.kind == "answer")
                             .values(data={"value": 1}))

    async def sealed_ids() -> set[str]:
        async with sessions() as db:
            return set((await db.execute(select(EvidenceEntry.session_id))).scalars())

    asyncio.run(prepare())
    from vbank.api.app import create_app

    app = create_app(settings)
    with TestClient(app):
        branch = app.state.branch
        assert asyncio.run(sealed_ids()) == {"s_ok"}
        assert branch.sealer.unsealed == {"s_bad": 1}
        assert any("ALERT" in r.getMessage() and "s_bad" in r.getMessage()
                   for r in caplog.records)
        asyncio.run(mend())  # the operator mends what stopped it: the next attempt seals
        deadline = datetime.now(UTC) + timedelta(seconds=60)
        while branch.sealer.unsealed and datetime.now(UTC) < deadline:
            asyncio.run(asyncio.sleep(0.2))
        assert branch.sealer.unsealed == {}
        assert asyncio.run(sealed_ids()) == {"s_ok", "s_bad"}
        assert branch.sealer.failures >= 1
    asyncio.run(engine.dispose())
