"""Sealing, verifying and exporting sessions' evidence, and the branch's signing key.

Under the data directory:

- ``keys/branch-ed25519.pem``: the branch's private key (mode 0600, made on first start);
  ``keys/branch-ed25519.pub.pem`` beside it is the public key verifiers use.
- ``evidence/<session_id>/``: ``session.json``, ``transcript.json``, ``timeline.json``,
  ``qc.json`` and ``manifest.json``. The manifest lists these and every recording, snapshot,
  document and signature image of the session (each where it already lives) with its SHA-256.

The rules (manifest format, chain links, what counts as a problem) are in
``vbank.domain.evidence``; this module reads and writes files and rows around them.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import secrets
import shutil
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vbank.domain.evidence import (
    BadManifest,
    ChainLink,
    EvidenceError,
    EvidenceItem,
    EvidenceManifest,
    MissingItem,
    NotInPackage,
    Record,
    UnknownSession,
    VerifyResult,
    check_chain,
    check_signatures,
    compare_items,
    document_bytes,
    next_link,
    path_problem,
    sha256_hex,
    split_records,
    summarize,
)
from vbank.store import repo
from vbank.store.models import AuditRead, CallSession, EvidenceEntry, SessionRecord

KEY_PATH = "keys/branch-ed25519.pem"
PUBLIC_KEY_PATH = "keys/branch-ed25519.pub.pem"
EVIDENCE_DIR = "evidence"
#: how often sealing retries when another node took the chain's next number first
SEAL_ATTEMPTS = 8
#: one sealer at a time per event loop, so two sessions ending together take turns
_seal_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary())


# ------------------------------------------------------------------ the branch key
def branch_key(data_dir: Path) -> Ed25519PrivateKey:
    """The branch's Ed25519 key: loaded, or made on first start (never logged or shown)."""
    path = data_dir / KEY_PATH
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not path.exists():
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        # Written whole under a private name, then linked in: a node starting at the same
        # moment either wins the link or reads the other's complete key, never half a file.
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(pem)
                f.flush()
                os.fsync(f.fileno())
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
    key = _load_private(path)
    public = _public_pem(key.public_key())
    public_path = data_dir / PUBLIC_KEY_PATH
    if not public_path.is_file() or public_path.read_bytes() != public:
        public_path.write_bytes(public)
    return key


def _load_private(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise EvidenceError(f"{path} is not a readable private key") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise EvidenceError(f"{path} is not an Ed25519 key")
    return key


def _public_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def load_public_key(data_dir: Path) -> Ed25519PublicKey | None:
    """The branch's public key for verifying, or None when this data dir has none."""
    path = data_dir / PUBLIC_KEY_PATH
    if path.is_file():
        try:
            key = serialization.load_pem_public_key(path.read_bytes())
        except ValueError as exc:
            raise EvidenceError(f"{path} is not a readable public key") from exc
        if not isinstance(key, Ed25519PublicKey):
            raise EvidenceError(f"{path} is not an Ed25519 key")
        return key
    if (data_dir / KEY_PATH).is_file():
        return _load_private(data_dir / KEY_PATH).public_key()
    return None


# ------------------------------------------------------------------ reading rows and files
def iso(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC; SQLite hands back naive datetimes, which were stored as UTC."""
    if moment is None:
        return None
    return (moment.replace(tzinfo=UTC) if moment.tzinfo is None
            else moment.astimezone(UTC)).isoformat()


def _digest(path: Path) -> tuple[str, int] | None:
    """SHA-256 and size of a file read in chunks; None when it cannot be read.

    (``vbank.rtc.recorder`` has the same few lines; importing it would load PyAV here.)
    """
    h = hashlib.sha256()
    size = 0
    try:
        with path.open("rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
                size += len(chunk)
    except OSError:
        return None
    return h.hexdigest(), size


async def get_entry(db: AsyncSession, session_id: str) -> EvidenceEntry | None:
    return (await db.execute(select(EvidenceEntry).where(EvidenceEntry.session_id
                                                         == session_id))).scalar_one_or_none()


async def unsealed_sessions(db: AsyncSession, node: str = "") -> list[str]:
    """Calls ``node`` hosted ("" for a single node's) that ended after their call started
    and were never sealed (a seal that failed, or a stop between the end and the seal),
    oldest first: the server seals them when it starts."""
    hosted = CallSession.node.is_(None) if not node else CallSession.node == node
    sealed = select(EvidenceEntry.session_id)
    rows = await db.execute(select(CallSession.id).where(
        CallSession.state == "ended", CallSession.started_at.is_not(None), hosted,
        CallSession.id.not_in(sealed)).order_by(CallSession.created_at))
    return list(rows.scalars())


async def records_of(db: AsyncSession, session_id: str) -> list[SessionRecord]:
    rows = await db.execute(select(SessionRecord).where(SessionRecord.session_id == session_id)
                            .order_by(SessionRecord.at, SessionRecord.id))
    return list(rows.scalars())


_LINK_COLUMNS = (EvidenceEntry.seq, EvidenceEntry.manifest_sha256, EvidenceEntry.prev_sha256,
                 EvidenceEntry.chain_sha256, EvidenceEntry.signature)


def _link(entry: EvidenceEntry) -> ChainLink:
    return ChainLink(entry.seq, entry.manifest_sha256, entry.prev_sha256, entry.chain_sha256,
                     entry.signature)


def _session_document(row: CallSession) -> dict[str, Any]:
    return {"session_id": row.id, "reference": row.reference, "service": row.service,
            "customer": row.customer, "teller": row.teller, "tellers": list(row.tellers),
            "state": row.state, "outcome": row.outcome, "flow": row.flow,
            "flow_step": row.flow_step, "flow_state": row.flow_state,
            "resumed_from": row.resumed_from, "created_at": iso(row.created_at),
            "started_at": iso(row.started_at), "ended_at": iso(row.ended_at)}


@dataclass(frozen=True, slots=True)
class _RecordingFile:
    role: str
    path: str
    sha256: str
    bytes: int
    started_at: str
    duration_s: float


# ------------------------------------------------------------------ sealing
def _seal_lock() -> asyncio.Lock:
    loop = asyncio.get_running_loop()
    lock = _seal_locks.get(loop)
    if lock is None:
        lock = _seal_locks[loop] = asyncio.Lock()
    return lock


async def seal_session(sessions: async_sessionmaker[AsyncSession], data_dir: Path,
                       session_id: str, key: Ed25519PrivateKey,
                       now: datetime | None = None) -> EvidenceEntry | None:
    """Seal a session's evidence and append it to the chain; None for an unknown session.

    Call it once the session has ended and its recordings are stored. Sealing a session
    again returns the entry it already has. ``sessions`` is a session factory (not one
    session) because a conflict with another node's seal is retried in a new transaction.
    """
    async with _seal_lock():
        async with sessions() as db:
            existing = await get_entry(db, session_id)
            row = await repo.get_session(db, session_id)
            if existing is not None or row is None:
                return existing
            session_doc = _session_document(row)
            recordings = [_RecordingFile(r.role, r.path, r.sha256, r.bytes,
                                         iso(r.started_at) or "", r.duration_s)
                          for r in await repo.recordings_of(db, session_id)]
            records = [Record(iso(r.at) or "", r.kind, r.actor, dict(r.data or {}), r.path,
                              r.sha256) for r in await records_of(db, session_id)]
        sealed_at = iso(now or datetime.now(UTC)) or ""
        staging, manifest = await asyncio.to_thread(
            _stage, data_dir, session_doc, recordings, records, sealed_at)
        try:
            return await _append(sessions, data_dir, manifest, staging, key)
        finally:
            await asyncio.to_thread(shutil.rmtree, staging, True)


async def _append(sessions: async_sessionmaker[AsyncSession], data_dir: Path,
                  manifest: EvidenceManifest, staging: Path,
                  key: Ed25519PrivateKey) -> EvidenceEntry:
    folder = f"{EVIDENCE_DIR}/{manifest.session_id}"
    for _ in range(SEAL_ATTEMPTS):
        async with sessions() as db:
            existing = await get_entry(db, manifest.session_id)
            if existing is not None:  # another node sealed it meanwhile
                return existing
            # columns, not a row object: the new entry may reuse a number this session saw
            head = (await db.execute(select(*_LINK_COLUMNS).order_by(EvidenceEntry.seq.desc())
                                     .limit(1))).first()
            link = next_link(None if head is None else ChainLink(*head), manifest.sha256(), key)
            entry = EvidenceEntry(
                seq=link.seq, session_id=manifest.session_id, service=manifest.service,
                sealed_at=datetime.fromisoformat(manifest.sealed_at),
                manifest_path=f"{folder}/manifest.json", manifest_sha256=link.manifest_sha256,
                prev_sha256=link.prev_sha256, chain_sha256=link.chain_sha256,
                signature=link.signature)
            db.add(entry)
            try:
                await db.flush()
            except IntegrityError:  # the number (or the session) was taken meanwhile
                await db.rollback()
                continue
            # Files go into place only once this insert holds its number: a seal that loses
            # the race never overwrites the winner's files.
            await asyncio.to_thread(_place, staging, data_dir / folder)
            db.expunge(entry)  # keep its loaded values once the commit expires the rest
            await db.commit()
            return entry
    raise EvidenceError(f"session {manifest.session_id} was not sealed: the chain moved on "
                        f"{SEAL_ATTEMPTS} times")


def _place(staging: Path, final: Path) -> None:
    if final.exists():  # left by a seal whose commit never happened
        shutil.rmtree(final)
    os.replace(staging, final)


def _stage(data_dir: Path, session_doc: dict[str, Any], recordings: Sequence[_RecordingFile],
           records: Sequence[Record], sealed_at: str) -> tuple[Path, EvidenceManifest]:
    """Write the package's documents and manifest into a fresh folder beside the final one."""
    session_id = str(session_doc["session_id"])
    staging = data_dir / EVIDENCE_DIR / f".{session_id}.{secrets.token_hex(6)}"
    staging.mkdir(parents=True)
    try:
        return staging, _write_package(data_dir, staging, session_doc, recordings, records,
                                       sealed_at)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)  # no half-written package stays behind
        raise


def _write_package(data_dir: Path, staging: Path, session_doc: dict[str, Any],
                   recordings: Sequence[_RecordingFile], records: Sequence[Record],
                   sealed_at: str) -> EvidenceManifest:
    session_id = str(session_doc["session_id"])
    folder = f"{EVIDENCE_DIR}/{session_id}"
    items: list[EvidenceItem] = []
    documents = {"session": session_doc, **split_records(records)}
    for kind, content in documents.items():
        data = document_bytes(content)
        (staging / f"{kind}.json").write_bytes(data)
        items.append(EvidenceItem(kind, f"{folder}/{kind}.json", sha256_hex(data), len(data)))
    unavailable: list[str] = []
    for rec in recordings:
        if path_problem(rec.path):  # stored outside the data directory
            unavailable.append(rec.path)
            continue
        found = _digest(data_dir / rec.path)
        # The hash taken when the recording closed is the witness; a file changed since
        # then fails verify from the start instead of being sealed as it is now.
        items.append(EvidenceItem("recording", rec.path, rec.sha256,
                                  found[1] if found else rec.bytes, role=rec.role,
                                  started_at=rec.started_at, duration_s=rec.duration_s))
    seen = {item.path for item in items}
    for r in records:
        if r.path is None or r.path in seen:
            continue
        seen.add(r.path)
        found = None if path_problem(r.path) else _digest(data_dir / r.path)
        digest = r.sha256 or (found[0] if found else None)
        if digest is None or path_problem(r.path):  # nothing to vouch for it
            unavailable.append(r.path)
            continue
        label = r.data.get("title") or r.data.get("name")
        items.append(EvidenceItem(r.kind, r.path, digest, found[1] if found else 0,
                                  label=None if label is None else str(label)))
    summary = summarize(records, items)
    if unavailable:
        summary["unavailable"] = unavailable
    manifest = EvidenceManifest(
        session_id=session_id, service=str(session_doc["service"]),
        reference=str(session_doc["reference"]), customer=str(session_doc["customer"]),
        tellers=tuple(session_doc["tellers"]), outcome=session_doc["outcome"],
        sealed_at=sealed_at, items=tuple(items), summary=summary)
    (staging / "manifest.json").write_bytes(manifest.to_json())
    return manifest


# ------------------------------------------------------------------ verifying and reading
async def verify_session(db: AsyncSession, data_dir: Path, session_id: str,
                         public_key: Ed25519PublicKey | None) -> VerifyResult:
    """Check a sealed session: its manifest, its signature, the chain up to it, every item.

    ``UnknownSession`` when the session was never sealed.
    """
    entry = await get_entry(db, session_id)
    if entry is None:
        raise UnknownSession(session_id)
    rows = await db.execute(select(EvidenceEntry).where(EvidenceEntry.seq <= entry.seq)
                            .order_by(EvidenceEntry.seq))
    links = [_link(e) for e in rows.scalars()]
    problems = check_chain(links)
    if public_key is None:
        problems.append(f"signature: no branch public key at {PUBLIC_KEY_PATH}")
    else:
        problems += check_signatures(links, public_key)
    problems += await asyncio.to_thread(_check_files, data_dir, entry)
    return VerifyResult.of(problems)


def _check_files(data_dir: Path, entry: EvidenceEntry) -> list[str]:
    unsafe = path_problem(entry.manifest_path)
    if unsafe:
        return [unsafe]
    try:
        raw = (data_dir / entry.manifest_path).read_bytes()
    except OSError:
        return [f"missing: {entry.manifest_path}"]
    problems = []
    if sha256_hex(raw) != entry.manifest_sha256:
        problems.append(f"manifest: {entry.manifest_path} changed")
    try:
        manifest = EvidenceManifest.from_json(raw)
    except BadManifest:
        return [*problems, f"manifest: {entry.manifest_path} is not readable"]
    if manifest.session_id != entry.session_id:
        problems.append(f"manifest: {entry.manifest_path} is for session "
                        f"{manifest.session_id}")
    found: dict[str, str | None] = {}
    for item in manifest.items:
        if item.path not in found and not path_problem(item.path):
            digest = _digest(data_dir / item.path)
            found[item.path] = digest[0] if digest else None
    return problems + compare_items(manifest.items, found)


async def read_manifest(db: AsyncSession, data_dir: Path,
                        session_id: str) -> tuple[EvidenceEntry, EvidenceManifest]:
    """A sealed session's entry and manifest as stored (verify says whether to trust it)."""
    entry = await get_entry(db, session_id)
    if entry is None:
        raise UnknownSession(session_id)
    if path_problem(entry.manifest_path):
        raise BadManifest(f"manifest: unsafe path {entry.manifest_path!r}")
    try:
        raw = await asyncio.to_thread((data_dir / entry.manifest_path).read_bytes)
    except OSError as exc:
        raise MissingItem(entry.manifest_path) from exc
    return entry, EvidenceManifest.from_json(raw)


def read_documents(data_dir: Path, manifest: EvidenceManifest) -> dict[str, Any]:
    """The transcript, timeline and QC records of a package ([] for one that is unreadable)."""
    out: dict[str, Any] = {}
    for kind in ("transcript", "timeline", "qc"):
        item = next((i for i in manifest.items if i.kind == kind), None)
        out[kind] = []
        if item is not None and not path_problem(item.path):
            with contextlib.suppress(OSError, ValueError):
                out[kind] = json.loads((data_dir / item.path).read_bytes())
    return out


def item_file(data_dir: Path, manifest: EvidenceManifest, path: str) -> Path:
    """The file of one item of the package; only paths the manifest lists are served."""
    item = manifest.item(path)
    if item is None or path_problem(path):
        raise NotInPackage(manifest.session_id, path)
    root = data_dir.resolve()
    file = (data_dir / path).resolve()
    if not file.is_relative_to(root) or not file.is_file():
        raise MissingItem(path)
    return file


@dataclass(frozen=True, slots=True)
class ExportResult:
    written: list[str]  # paths relative to the export folder
    missing: list[str]  # items that could not be copied


async def export_session(db: AsyncSession, data_dir: Path, session_id: str,
                         out_dir: Path) -> ExportResult:
    """Copy a sealed package into ``out_dir``, keeping the paths it has under the data dir.

    Also writes ``evidence/<session_id>/chain-entry.json`` (the chain entry with its
    signature) and ``keys/branch-ed25519.pub.pem``, so the package can be checked alone.
    """
    entry = await get_entry(db, session_id)
    if entry is None:
        raise UnknownSession(session_id)
    entry_doc = {"seq": entry.seq, "session_id": entry.session_id, "service": entry.service,
                 "sealed_at": iso(entry.sealed_at), "manifest_path": entry.manifest_path,
                 "manifest_sha256": entry.manifest_sha256, "prev_sha256": entry.prev_sha256,
                 "chain_sha256": entry.chain_sha256, "signature": entry.signature}
    return await asyncio.to_thread(_export, data_dir, entry.manifest_path, entry_doc, out_dir)


def _export(data_dir: Path, manifest_path: str, entry_doc: dict[str, Any],
            out_dir: Path) -> ExportResult:
    written: list[str] = []
    missing: list[str] = []

    def copy(relative: str) -> bool:
        source = data_dir / relative
        if path_problem(relative) or not source.is_file():
            missing.append(relative)
            return False
        target = out_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
        written.append(relative)
        return True

    if copy(manifest_path):
        try:
            manifest = EvidenceManifest.from_json((data_dir / manifest_path).read_bytes())
        except BadManifest:
            manifest = None
        for item in manifest.items if manifest else ():
            if item.path not in written:
                copy(item.path)
    entry_path = f"{manifest_path.rsplit('/', 1)[0]}/chain-entry.json"
    (out_dir / entry_path).parent.mkdir(parents=True, exist_ok=True)
    (out_dir / entry_path).write_bytes(document_bytes(entry_doc))
    written.append(entry_path)
    if (data_dir / PUBLIC_KEY_PATH).is_file():
        copy(PUBLIC_KEY_PATH)
    return ExportResult(written, missing)


# ------------------------------------------------------------------ listing and the audit log
@dataclass(frozen=True, slots=True)
class SealedSession:
    session_id: str
    service: str
    reference: str | None
    customer: str | None
    outcome: str | None
    sealed_at: datetime
    seq: int


async def list_sealed(db: AsyncSession, limit: int | None = None) -> list[SealedSession]:
    """Sealed sessions, newest first."""
    query = (select(EvidenceEntry, CallSession)
             .join(CallSession, CallSession.id == EvidenceEntry.session_id, isouter=True)
             .order_by(EvidenceEntry.seq.desc()).limit(limit))
    return [SealedSession(e.session_id, e.service, s.reference if s else None,
                          s.customer if s else None, s.outcome if s else None,
                          e.sealed_at, e.seq)
            for e, s in (await db.execute(query)).all()]


async def log_read(db: AsyncSession, actor: str, action: str, target: str | None) -> None:
    """Note a read of evidence (list, read, verify, export, replay); the caller commits."""
    db.add(AuditRead(at=datetime.now(UTC), actor=actor[:64], action=action,
                     target=None if target is None else target[:64]))
    await db.flush()
