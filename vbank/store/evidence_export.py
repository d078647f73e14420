"""``vbank evidence export``: a sealed package copied out, with what checks it alone.

The copy keeps each item's path under the data directory and adds the chain entry (with its
anchor), the RFC 3161 token when the seal was timestamped, and the keyring's public keys
(from the keyring, never from the data directory). An item that is a symbolic link is not
followed (it could point at any file the exporting user can read): it is reported instead.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from vbank.domain.evidence import (
    BadManifest,
    EvidenceManifest,
    UnknownSession,
    document_bytes,
)
from vbank.domain.keyring import Keyring
from vbank.store.evidence import get_entry, iso
from vbank.store.evidence_files import (
    FILE_MODE,
    LinkedItem,
    open_item,
    private_dir,
    read_item,
    write_private,
)
from vbank.store.models import EvidenceAnchor

#: where an export puts the keyring's public keys
KEYRING_EXPORT_PATH = "keys/evidence-keyring.json"


@dataclass(frozen=True, slots=True)
class ExportResult:
    written: list[str]  # paths relative to the export folder
    missing: list[str]  # items that could not be copied
    linked: list[str]  # items that are symbolic links: not copied (tampering)


async def export_session(db: AsyncSession, data_dir: Path, session_id: str, out_dir: Path,
                         keyring: Keyring) -> ExportResult:
    """Copy a sealed package into ``out_dir``, keeping the paths it has under the data dir.

    Also writes ``evidence/<session_id>/chain-entry.json`` (the chain entry with its
    signature and anchor), ``timestamp.tsr`` beside it when the seal was timestamped
    (``openssl ts -reply -in timestamp.tsr -text`` reads it) and the keyring's public keys
    at ``keys/evidence-keyring.json``, so the package can be checked alone. An item that is
    a symbolic link is not followed: it is listed in ``linked``.
    """
    entry = await get_entry(db, session_id)
    if entry is None:
        raise UnknownSession(session_id)
    anchor = await db.get(EvidenceAnchor, entry.seq)
    entry_doc = {"seq": entry.seq, "session_id": entry.session_id, "service": entry.service,
                 "sealed_at": iso(entry.sealed_at), "manifest_path": entry.manifest_path,
                 "manifest_sha256": entry.manifest_sha256, "prev_sha256": entry.prev_sha256,
                 "chain_sha256": entry.chain_sha256, "signature": entry.signature,
                 "key_id": entry.key_id,
                 "anchor": None if anchor is None else {
                     "chain_sha256": anchor.chain_sha256, "signature": anchor.signature,
                     "key_id": anchor.key_id, "anchored_at": iso(anchor.anchored_at),
                     "timestamped": anchor.timestamp is not None}}
    token = None if anchor is None else anchor.timestamp
    return await asyncio.to_thread(_export, data_dir, entry.manifest_path, entry_doc, token,
                                   keyring, out_dir)


def _export(data_dir: Path, manifest_path: str, entry_doc: dict[str, Any],
            token: bytes | None, keyring: Keyring, out_dir: Path) -> ExportResult:
    done = ExportResult([], [], [])

    def put(relative: str, data: bytes) -> None:
        private_dir((out_dir / relative).parent)
        write_private(out_dir / relative, data)
        done.written.append(relative)

    def copy(relative: str) -> bool:
        try:
            source = open_item(data_dir, relative)
        except LinkedItem:
            done.linked.append(relative)
            return False
        except OSError:
            done.missing.append(relative)
            return False
        with os.fdopen(source, "rb") as src:
            target = out_dir / relative
            private_dir(target.parent)
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW,
                         FILE_MODE)
            with os.fdopen(fd, "wb") as dst:
                os.fchmod(dst.fileno(), FILE_MODE)
                shutil.copyfileobj(src, dst, 1 << 20)
            times = os.fstat(src.fileno())
            os.utime(target, ns=(times.st_atime_ns, times.st_mtime_ns))
        done.written.append(relative)
        return True

    if copy(manifest_path):
        try:
            manifest = EvidenceManifest.from_json(read_item(out_dir, manifest_path))
        except BadManifest:
            manifest = None
        for item in manifest.items if manifest else ():
            if item.path not in done.written:
                copy(item.path)
    folder = manifest_path.rsplit("/", 1)[0]
    put(f"{folder}/chain-entry.json", document_bytes(entry_doc))
    if token is not None:
        put(f"{folder}/timestamp.tsr", token)
    put(KEYRING_EXPORT_PATH, keyring.to_json())
    return done
