"""Sealing, verifying and exporting sessions' evidence.

Under the data directory, ``evidence/<session_id>/``: ``session.json``, ``transcript.json``,
``timeline.json``, ``qc.json`` and ``manifest.json`` (folders 0750, files 0640). The
manifest lists these and every recording, snapshot, document and signature image of the
session (each where it already lives) with its SHA-256. In the database: the chain entry
(``evidence``) and its anchor (``evidence_anchors``, with the RFC 3161 token when an
authority is configured), written in one transaction.

The signing key and the keyring are not here but where the operator keeps them
(``vbank.store.evidence_keys``); verify trusts only those, the anchors and the authority's
certificate (``EvidenceTrust``). The rules (manifest format, chain links, anchors, what
counts as a problem) are in ``vbank.domain``; this module reads and writes files and rows
around them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import weakref
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vbank.domain.anchors import Anchor, EvidenceTrust, anchor_of, check_anchors
from vbank.domain.evidence import (
    LINKED,
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
    chain_message,
    check_chain,
    compare_items,
    document_bytes,
    next_link,
    path_problem,
    sha256_hex,
    split_records,
    summarize,
)
from vbank.domain.keyring import check_signatures
from vbank.store import repo
from vbank.store.evidence_files import (
    LinkedItem,
    check_no_link,
    item_digest,
    private_dir,
    read_item,
    write_private,
)
from vbank.store.models import (
    AuditRead,
    CallSession,
    EvidenceAnchor,
    EvidenceEntry,
    SessionRecord,
)

EVIDENCE_DIR = "evidence"
#: how often sealing retries when another node took the chain's next number first
SEAL_ATTEMPTS = 8
#: one sealer at a time per event loop, so two sessions ending together take turns
_seal_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary())
#: asks the timestamp authority to stamp (message, chain_sha256); returns the token
Stamper = Callable[[bytes, str], Awaitable[bytes]]


# ------------------------------------------------------------------ reading rows and files
def iso(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC; SQLite hands back naive datetimes, which were stored as UTC."""
    if moment is None:
        return None
    return (moment.replace(tzinfo=UTC) if moment.tzinfo is None
            else moment.astimezone(UTC)).isoformat()


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
                 EvidenceEntry.chain_sha256, EvidenceEntry.signature, EvidenceEntry.key_id)


def _link(entry: EvidenceEntry) -> ChainLink:
    return ChainLink(entry.seq, entry.manifest_sha256, entry.prev_sha256, entry.chain_sha256,
                     entry.signature, entry.key_id)


def _anchor(row: EvidenceAnchor) -> Anchor:
    return Anchor(row.seq, row.session_id, row.chain_sha256, row.signature, row.key_id,
                  row.timestamp)


def _session_document(row: CallSession) -> dict[str, Any]:
    return {"session_id": row.id, "reference": row.reference, "service": row.service,
            "language": row.language,
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
                       now: datetime | None = None,
                       stamp: Stamper | None = None) -> EvidenceEntry | None:
    """Seal a session's evidence and append it to the chain; None for an unknown session.

    Call it once the session has ended and its recordings are stored. Sealing a session
    again returns the entry it already has. ``sessions`` is a session factory (not one
    session) because a conflict with another node's seal is retried in a new transaction.
    ``stamp``: the timestamp authority's (``TimestampAuthority.stamp``); its token goes
    into the entry's anchor, and when it fails, nothing is sealed.
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
            return await _append(sessions, data_dir, manifest, staging, key, stamp)
        finally:
            await asyncio.to_thread(shutil.rmtree, staging, True)


async def _append(sessions: async_sessionmaker[AsyncSession], data_dir: Path,
                  manifest: EvidenceManifest, staging: Path, key: Ed25519PrivateKey,
                  stamp: Stamper | None) -> EvidenceEntry:
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
        # Stamped outside any transaction (the authority may take seconds); a number lost
        # to another node below costs one more stamp.
        token = None if stamp is None else await stamp(
            chain_message(link.seq, link.prev_sha256, link.manifest_sha256), link.chain_sha256)
        async with sessions() as db:
            entry = EvidenceEntry(
                seq=link.seq, session_id=manifest.session_id, service=manifest.service,
                sealed_at=datetime.fromisoformat(manifest.sealed_at),
                manifest_path=f"{folder}/manifest.json", manifest_sha256=link.manifest_sha256,
                prev_sha256=link.prev_sha256, chain_sha256=link.chain_sha256,
                signature=link.signature, key_id=link.key_id)
            anchor = anchor_of(link, manifest.session_id, token)
            db.add(entry)
            db.add(EvidenceAnchor(seq=anchor.seq, session_id=anchor.session_id,
                                  chain_sha256=anchor.chain_sha256,
                                  signature=anchor.signature, key_id=anchor.key_id,
                                  anchored_at=datetime.now(UTC), timestamp=anchor.timestamp))
            try:
                await db.flush()
            except IntegrityError:  # the number (or the session) was taken meanwhile
                await db.rollback()
                await _refuse_a_cut_chain(db, link.seq)
                continue
            # Files go into place only once this insert holds its number: a seal that loses
            # the race never overwrites the winner's files.
            await asyncio.to_thread(_place, staging, data_dir / folder)
            db.expunge(entry)  # keep its loaded values once the commit expires the rest
            await db.commit()
            return entry
    raise EvidenceError(f"session {manifest.session_id} was not sealed: the chain moved on "
                        f"{SEAL_ATTEMPTS} times")


async def _refuse_a_cut_chain(db: AsyncSession, seq: int) -> None:
    """A number taken by an anchor whose entry is gone: the chain's end was deleted. Sealing
    on would write over the evidence of the cut, so the seal fails (and alerts) instead."""
    anchored = await db.get(EvidenceAnchor, seq)
    if anchored is not None and await db.get(EvidenceEntry, seq) is None:
        raise EvidenceError(f"session not sealed: the chain was cut (entry {seq}, session "
                            f"{anchored.session_id}, is anchored but missing); run vbank "
                            f"evidence verify --all")


def _place(staging: Path, final: Path) -> None:
    if final.exists():  # left by a seal whose commit never happened
        shutil.rmtree(final)
    os.replace(staging, final)


def _stage(data_dir: Path, session_doc: dict[str, Any], recordings: Sequence[_RecordingFile],
           records: Sequence[Record], sealed_at: str) -> tuple[Path, EvidenceManifest]:
    """Write the package's documents and manifest into a fresh folder beside the final one."""
    session_id = str(session_doc["session_id"])
    private_dir(data_dir / EVIDENCE_DIR)
    staging = data_dir / EVIDENCE_DIR / f".{session_id}.{secrets.token_hex(6)}"
    private_dir(staging)
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
        write_private(staging / f"{kind}.json", data)
        items.append(EvidenceItem(kind, f"{folder}/{kind}.json", sha256_hex(data), len(data)))
    unavailable: list[str] = []
    for rec in recordings:
        if path_problem(rec.path):  # stored outside the data directory
            unavailable.append(rec.path)
            continue
        found = _sealed_digest(data_dir, rec.path)
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
        found = None if path_problem(r.path) else _sealed_digest(data_dir, r.path)
        digest = r.sha256 or (found[0] if found else None)
        if digest is None or path_problem(r.path):  # nothing to vouch for it
            unavailable.append(r.path)
            continue
        label = r.data.get("title") or r.data.get("name")
        items.append(EvidenceItem(r.kind, r.path, digest, found[1] if found else 0,
                                  label=None if label is None else str(label)))
    summary = summarize(records, items)
    summary["language"] = session_doc["language"]
    if unavailable:
        summary["unavailable"] = unavailable
    manifest = EvidenceManifest(
        session_id=session_id, service=str(session_doc["service"]),
        reference=str(session_doc["reference"]), customer=str(session_doc["customer"]),
        tellers=tuple(session_doc["tellers"]), outcome=session_doc["outcome"],
        sealed_at=sealed_at, items=tuple(items), summary=summary)
    write_private(staging / "manifest.json", manifest.to_json())
    return manifest


def _sealed_digest(data_dir: Path, relative: str) -> tuple[str, int] | None:
    """An item's digest as sealing sees it: a link is not read (verify then says so)."""
    try:
        return item_digest(data_dir, relative)
    except LinkedItem:
        return None


# ------------------------------------------------------------------ verifying and reading
async def verify_session(db: AsyncSession, data_dir: Path, session_id: str,
                         trust: EvidenceTrust) -> VerifyResult:
    """Check a sealed session: the chain up to it (links, signatures, anchors and their
    timestamps), its manifest and every item.

    A session whose entry is gone but whose anchor remains was sealed: the chain was cut,
    and what is missing is reported. ``UnknownSession`` only when it was never sealed.
    """
    entry = await get_entry(db, session_id)
    if entry is not None:
        upto, manifest_path = entry.seq, entry.manifest_path
        manifest_sha256: str | None = entry.manifest_sha256
    else:
        anchored = (await db.execute(select(EvidenceAnchor).where(
            EvidenceAnchor.session_id == session_id))).scalar_one_or_none()
        if anchored is None:
            raise UnknownSession(session_id)
        upto, manifest_path = anchored.seq, f"{EVIDENCE_DIR}/{session_id}/manifest.json"
        manifest_sha256 = None
    problems = await _check_chain(db, trust, upto)
    problems += await asyncio.to_thread(_check_files, data_dir, session_id, manifest_path,
                                        manifest_sha256)
    return VerifyResult.of(problems)


async def verify_chain(db: AsyncSession, data_dir: Path, trust: EvidenceTrust) -> VerifyResult:
    """``vbank evidence verify --all``: the whole chain against its anchors, and the files of
    every sealed session, each problem once."""
    problems = await _check_chain(db, trust, None)
    rows = await db.execute(select(EvidenceEntry.session_id, EvidenceEntry.manifest_path,
                                   EvidenceEntry.manifest_sha256).order_by(EvidenceEntry.seq))
    for session_id, manifest_path, manifest_sha256 in rows.all():
        problems += await asyncio.to_thread(_check_files, data_dir, session_id, manifest_path,
                                            manifest_sha256)
    return VerifyResult.of(problems)


async def count_entries(db: AsyncSession) -> int:
    return int(await db.scalar(select(func.count()).select_from(EvidenceEntry)) or 0)


async def _check_chain(db: AsyncSession, trust: EvidenceTrust, upto: int | None) -> list[str]:
    """The chain's problems from its first entry to ``upto`` (None: to its end and past,
    as far as the anchors go)."""
    entries = select(EvidenceEntry).order_by(EvidenceEntry.seq)
    anchors = select(EvidenceAnchor).order_by(EvidenceAnchor.seq)
    if upto is not None:
        entries = entries.where(EvidenceEntry.seq <= upto)
        anchors = anchors.where(EvidenceAnchor.seq <= upto)
    links = [_link(e) for e in (await db.execute(entries)).scalars()]
    problems = check_chain(links)
    problems += check_signatures(links, trust.keyring)
    problems += check_anchors(links, [_anchor(a) for a in (await db.execute(anchors)).scalars()],
                              trust)
    return problems


def _check_files(data_dir: Path, session_id: str, manifest_path: str,
                 manifest_sha256: str | None) -> list[str]:
    """The manifest against its hash in the chain (None: the entry is gone) and each item."""
    unsafe = path_problem(manifest_path)
    if unsafe:
        return [unsafe]
    try:
        raw = read_item(data_dir, manifest_path)
    except LinkedItem as exc:
        return [str(exc)]
    except OSError:
        return [f"missing: {manifest_path}"]
    problems = []
    if manifest_sha256 is not None and sha256_hex(raw) != manifest_sha256:
        problems.append(f"manifest: {manifest_path} changed")
    try:
        manifest = EvidenceManifest.from_json(raw)
    except BadManifest:
        return [*problems, f"manifest: {manifest_path} is not readable"]
    if manifest.session_id != session_id:
        problems.append(f"manifest: {manifest_path} is for session {manifest.session_id}")
    found: dict[str, str | None] = {}
    for item in manifest.items:
        if item.path not in found and not path_problem(item.path):
            try:
                digest = item_digest(data_dir, item.path)
            except LinkedItem:
                found[item.path] = LINKED
                continue
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
        raw = await asyncio.to_thread(read_item, data_dir, entry.manifest_path)
    except LinkedItem:
        raise
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
            with contextlib.suppress(OSError, ValueError, EvidenceError):
                out[kind] = json.loads(read_item(data_dir, item.path))
    return out


def item_file(data_dir: Path, manifest: EvidenceManifest, path: str) -> Path:
    """The file of one item of the package; only paths the manifest lists are served, and
    never through a symbolic link (``LinkedItem``)."""
    item = manifest.item(path)
    if item is None or path_problem(path):
        raise NotInPackage(manifest.session_id, path)
    try:
        check_no_link(data_dir, path)
    except LinkedItem:
        raise
    except OSError as exc:
        raise MissingItem(path) from exc
    return data_dir / path


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
