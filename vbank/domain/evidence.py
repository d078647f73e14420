"""Evidence (留证回溯): manifests, the branch's hash chain, signatures, and what verify reports.

A pure module: it never opens a file, a database or a clock. The store hands it what it
read (record rows as plain values, digests of files it hashed, chain entries) and gets back
documents to write, a manifest and its canonical bytes, signed chain links, and problems.

Every problem is one exact line naming what is wrong, so an auditor (or a test) can act on
it: ``changed: PATH (sha256 NEW… expected OLD…)``, ``missing: PATH``, ``linked: PATH ...``,
``chain: ...``, ``signature: invalid for entry N``, ``manifest: PATH changed``.

Signatures are checked against the keyring (``vbank.domain.keyring``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from vbank.domain import DomainError

#: the ``prev_sha256`` of the first entry of a chain
GENESIS = "0" * 64
#: the manifest format; a reader refuses any other
MANIFEST_VERSION = 1
#: record kinds that go to the transcript and to the QC file; every other kind is timeline
CAPTION_KINDS = frozenset({"caption"})
QC_KINDS = frozenset({"qc_alert", "qc_result"})
#: how many hex digits of a digest a problem line shows
SHORT = 12


class EvidenceError(DomainError):
    """Evidence that cannot be sealed, read or verified as asked."""


class UnknownSession(EvidenceError):
    def __init__(self, session_id: str) -> None:
        super().__init__(f"no sealed evidence for session {session_id}")
        self.session_id = session_id


class MissingItem(EvidenceError):
    def __init__(self, path: str) -> None:
        super().__init__(f"missing: {path}")
        self.path = path


class NotInPackage(EvidenceError):
    def __init__(self, session_id: str, path: str) -> None:
        super().__init__(f"not in the evidence of session {session_id}: {path}")


class BadManifest(EvidenceError):
    """Manifest bytes that do not parse as this format."""


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def canonical_json(value: Any) -> bytes:
    """One byte string per value: sorted keys, no spaces, UTF-8 (so hashes are stable)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8", "backslashreplace")


def document_bytes(value: Any) -> bytes:
    """A sealed JSON document (transcript, timeline, ...): stable, and readable by people.

    A lone surrogate (never taken in since the signaling socket refuses it, but perhaps
    stored before) is written as its JSON escape, ``\\ud800``, which reads back as the same
    string: a stored text never stops a call from being sealed."""
    return (json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False)
            + "\n").encode("utf-8", "backslashreplace")


@dataclass(frozen=True, slots=True)
class EvidenceItem:
    """One file of a package: its path relative to the data directory and its digest."""

    kind: str  # session | transcript | timeline | qc | recording | snapshot | document | ...
    path: str
    sha256: str
    bytes: int
    role: str | None = None  # recordings: customer | teller | agent
    label: str | None = None  # documents: their title
    started_at: str | None = None  # recordings: ISO time of their first frame
    duration_s: float | None = None  # recordings

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "path": self.path, "sha256": self.sha256,
                               "bytes": self.bytes}
        for name in ("role", "label", "started_at", "duration_s"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> EvidenceItem:
        duration = raw.get("duration_s")
        return cls(kind=str(raw["kind"]), path=str(raw["path"]), sha256=str(raw["sha256"]),
                   bytes=int(raw["bytes"]), role=_opt_str(raw.get("role")),
                   label=_opt_str(raw.get("label")),
                   started_at=_opt_str(raw.get("started_at")),
                   duration_s=None if duration is None else float(duration))


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True, slots=True)
class EvidenceManifest:
    """What a sealed session consists of; its canonical bytes are what the chain links."""

    session_id: str
    service: str
    reference: str
    customer: str
    tellers: tuple[str, ...]
    outcome: str | None
    sealed_at: str
    items: tuple[EvidenceItem, ...]
    summary: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"version": MANIFEST_VERSION, "session_id": self.session_id,
                "service": self.service, "reference": self.reference,
                "customer": self.customer, "tellers": list(self.tellers),
                "outcome": self.outcome, "sealed_at": self.sealed_at,
                "items": [item.to_dict() for item in self.items], "summary": self.summary}

    def to_json(self) -> bytes:
        return canonical_json(self.to_dict())

    def sha256(self) -> str:
        return sha256_hex(self.to_json())

    def item(self, path: str) -> EvidenceItem | None:
        return next((i for i in self.items if i.path == path), None)

    @classmethod
    def from_json(cls, data: bytes) -> EvidenceManifest:
        try:
            raw = json.loads(data.decode("utf-8"))
            if raw.get("version") != MANIFEST_VERSION:
                raise BadManifest(f"manifest: version {raw.get('version')!r} is not "
                                  f"{MANIFEST_VERSION}")
            return cls(session_id=str(raw["session_id"]), service=str(raw["service"]),
                       reference=str(raw["reference"]), customer=str(raw["customer"]),
                       tellers=tuple(str(t) for t in raw["tellers"]),
                       outcome=_opt_str(raw["outcome"]), sealed_at=str(raw["sealed_at"]),
                       items=tuple(EvidenceItem.from_dict(i) for i in raw["items"]),
                       summary=dict(raw["summary"]))
        except BadManifest:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise BadManifest(f"manifest: not readable ({type(exc).__name__})") from exc


@dataclass(frozen=True, slots=True)
class Record:
    """A session record as the sealer sees it (a ``SessionRecord`` row, times in ISO)."""

    at: str
    kind: str
    actor: str
    data: Mapping[str, Any]
    path: str | None = None
    sha256: str | None = None


def split_records(records: Sequence[Record]) -> dict[str, list[dict[str, Any]]]:
    """The transcript, timeline and QC documents of a session's records, in record order."""
    out: dict[str, list[dict[str, Any]]] = {"transcript": [], "timeline": [], "qc": []}
    for r in records:
        if r.kind in CAPTION_KINDS:
            out["transcript"].append({"at": r.at, "speaker": str(r.data.get("speaker")
                                                                 or r.actor),
                                      "text": str(r.data.get("text", ""))})
            continue
        entry: dict[str, Any] = {"at": r.at, "kind": r.kind, "actor": r.actor,
                                 "data": dict(r.data)}
        if r.path is not None:
            entry["path"] = r.path
        if r.sha256 is not None:
            entry["sha256"] = r.sha256
        out["qc" if r.kind in QC_KINDS else "timeline"].append(entry)
    return out


def summarize(records: Sequence[Record], items: Sequence[EvidenceItem]) -> dict[str, Any]:
    """Counts an auditor reads first: records of each kind, recordings and their length."""
    kinds: dict[str, int] = {}
    for r in records:
        kinds[r.kind] = kinds.get(r.kind, 0) + 1
    recordings = [i for i in items if i.kind == "recording"]
    return {"records": kinds, "items": len(items), "recordings": len(recordings),
            "recorded_s": round(sum(i.duration_s or 0.0 for i in recordings), 3)}


def path_problem(path: str) -> str | None:
    """Why an item path may not be opened under the data directory, or None if it may."""
    p = PurePosixPath(path)
    if not path or "\\" in path or p.is_absolute() or ".." in p.parts or "\x00" in path:
        return f"manifest: unsafe path {path!r}"
    return None


#: what ``compare_items`` is told for an item whose path is a symbolic link on disk
LINKED = "linked"


def compare_items(items: Sequence[EvidenceItem],
                  found: Mapping[str, str | None]) -> list[str]:
    """Problems of each item against ``found`` (path → sha256 on disk, None when absent,
    ``LINKED`` when the path, or a folder on it, is a symbolic link).

    A sealed item is a file the branch wrote; a link in its place points somewhere the
    manifest never vouched for, whatever the bytes there hash to: tampering.
    """
    problems: list[str] = []
    for item in items:
        unsafe = path_problem(item.path)
        if unsafe:
            problems.append(unsafe)
            continue
        actual = found.get(item.path)
        if actual == LINKED:
            problems.append(f"linked: {item.path} is a symbolic link (an item is never one: "
                            f"tampering)")
        elif actual is None:
            problems.append(f"missing: {item.path}")
        elif actual != item.sha256:
            problems.append(f"changed: {item.path} (sha256 {actual[:SHORT]}… "
                            f"expected {item.sha256[:SHORT]}…)")
    return problems


# ------------------------------------------------------------------ the chain
def chain_message(seq: int, prev_sha256: str, manifest_sha256: str) -> bytes:
    """The bytes whose SHA-256 is entry ``seq``'s chain hash (what a timestamp stamps)."""
    return f"vbank-evidence:{seq}:{prev_sha256}:{manifest_sha256}".encode("ascii")


def chain_hash(seq: int, prev_sha256: str, manifest_sha256: str) -> str:
    """The SHA-256 that links entry ``seq`` to the one before it."""
    return sha256_hex(chain_message(seq, prev_sha256, manifest_sha256))


@dataclass(frozen=True, slots=True)
class ChainLink:
    """An entry of the branch's chain, as stored (``EvidenceEntry`` without its paths)."""

    seq: int
    manifest_sha256: str
    prev_sha256: str
    chain_sha256: str
    signature: str  # hex Ed25519 signature of the ASCII bytes of ``chain_sha256``
    key_id: str | None = None  # the keyring's name of the key that signed (None: before ids)


def key_id(public_key: Ed25519PublicKey) -> str:
    """A key's name in chain entries and the keyring: 16 hex digits of its SHA-256."""
    return sha256_hex(public_key.public_bytes_raw())[:16]


def sign(key: Ed25519PrivateKey, chain_sha256: str) -> str:
    return key.sign(chain_sha256.encode("ascii")).hex()


def signature_valid(public_key: Ed25519PublicKey, chain_sha256: str, signature: str) -> bool:
    try:
        public_key.verify(bytes.fromhex(signature), chain_sha256.encode("ascii"))
    except (InvalidSignature, ValueError, UnicodeEncodeError):
        return False
    return True


def next_link(last: ChainLink | None, manifest_sha256: str,
              key: Ed25519PrivateKey) -> ChainLink:
    """The signed entry that follows ``last`` (the first of the chain when None)."""
    seq = 1 if last is None else last.seq + 1
    prev = GENESIS if last is None else last.chain_sha256
    digest = chain_hash(seq, prev, manifest_sha256)
    return ChainLink(seq, manifest_sha256, prev, digest, sign(key, digest),
                     key_id(key.public_key()))


def check_chain(links: Sequence[ChainLink]) -> list[str]:
    """Problems of a chain read from its first entry on, in the order it was read.

    Finds entries whose hash does not match their contents, entries that do not link to
    the one before, gaps, and entries out of order.
    """
    problems: list[str] = []
    prev_seq, prev_hash = 0, GENESIS
    for link in links:
        if link.chain_sha256 != chain_hash(link.seq, link.prev_sha256, link.manifest_sha256):
            problems.append(f"chain: entry {link.seq} does not match its hash")
        if link.seq <= prev_seq:
            problems.append(f"chain: entry {link.seq} is out of order (after entry {prev_seq})")
        elif link.seq > prev_seq + 1:
            first, last = prev_seq + 1, link.seq - 1
            problems.append(f"chain: entry {first} is missing" if first == last
                            else f"chain: entries {first} to {last} are missing")
        elif link.prev_sha256 != prev_hash:
            problems.append(f"chain: entry {link.seq} does not start the chain"
                            if prev_seq == 0
                            else f"chain: entry {link.seq} does not follow entry {prev_seq}")
        prev_seq, prev_hash = max(prev_seq, link.seq), link.chain_sha256
    return problems


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """What verify found: intact when there is no problem at all."""

    intact: bool
    problems: list[str]

    @classmethod
    def of(cls, problems: Sequence[str]) -> VerifyResult:
        return cls(intact=not problems, problems=list(problems))
