"""``/api/v1/evidence``: sealed sessions for auditors — list, read, verify, replay.

Only auditors read evidence, and every read is itself written to the audit log.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.responses import FileResponse
from pydantic import BaseModel

from vbank.api.deps import DbDep, SettingsDep, problem, require
from vbank.auth import Principal, Role
from vbank.domain.anchors import EvidenceTrust
from vbank.domain.evidence import (
    EvidenceError,
    MissingItem,
    NotInPackage,
    UnknownSession,
)
from vbank.store import evidence

router = APIRouter(prefix="/api/v1", tags=["evidence"])
Auditor = Annotated[Principal, Depends(require(Role.AUDITOR))]


def get_evidence_trust(request: Request) -> EvidenceTrust:
    return request.app.state.evidence_trust


Trust = Annotated[EvidenceTrust, Depends(get_evidence_trust)]


class SealedPublic(BaseModel):
    session_id: str
    service: str
    reference: str | None
    customer: str | None
    outcome: str | None
    sealed_at: datetime
    seq: int


class ItemPublic(BaseModel):
    kind: str
    path: str
    sha256: str
    bytes: int
    role: str | None = None
    label: str | None = None
    started_at: str | None = None
    duration_s: float | None = None


class ManifestPublic(BaseModel):
    session_id: str
    service: str
    reference: str
    customer: str
    tellers: list[str]
    outcome: str | None
    sealed_at: str
    items: list[ItemPublic]
    summary: dict[str, Any]
    seq: int
    chain_sha256: str
    signature: str
    #: the sealed documents, as the auditor page shows them (not vouched for: see verify)
    transcript: list[dict[str, Any]]
    timeline: list[dict[str, Any]]
    qc: list[dict[str, Any]]


class VerifyPublic(BaseModel):
    intact: bool
    problems: list[str]


def _http(exc: EvidenceError) -> HTTPException:
    """Unknown session, unlisted or missing file: 404; a package that cannot be read: 409."""
    if isinstance(exc, UnknownSession | MissingItem | NotInPackage):
        return HTTPException(status.HTTP_404_NOT_FOUND, str(exc))
    return HTTPException(status.HTTP_409_CONFLICT, str(exc))


@router.get("/evidence", response_model=list[SealedPublic])
async def list_evidence(auditor: Auditor, db: DbDep) -> list[SealedPublic]:
    """Sealed sessions, newest first."""
    sealed = await evidence.list_sealed(db)
    await evidence.log_read(db, auditor.username, "list", None)
    await db.commit()
    return [SealedPublic(session_id=s.session_id, service=s.service, reference=s.reference,
                         customer=s.customer, outcome=s.outcome, sealed_at=s.sealed_at,
                         seq=s.seq) for s in sealed]


@router.get("/evidence/{session_id}", response_model=ManifestPublic,
            responses={404: problem("no sealed evidence for that session")})
async def read_evidence(session_id: str, auditor: Auditor, db: DbDep,
                        settings: SettingsDep) -> ManifestPublic:
    """The manifest (every item's path and SHA-256), with the transcript and timeline."""
    try:
        entry, manifest = await evidence.read_manifest(db, settings.data, session_id)
    except EvidenceError as exc:
        raise _http(exc) from exc
    documents = evidence.read_documents(settings.data, manifest)
    await evidence.log_read(db, auditor.username, "read", session_id)
    await db.commit()
    return ManifestPublic(**{**manifest.to_dict(), **documents},
                          seq=entry.seq, chain_sha256=entry.chain_sha256,
                          signature=entry.signature)


@router.get("/evidence/{session_id}/verify", response_model=VerifyPublic,
            responses={404: problem("no sealed evidence for that session")})
async def verify_evidence(session_id: str, auditor: Auditor, db: DbDep, settings: SettingsDep,
                          trust: Trust) -> VerifyPublic:
    """``intact`` when nothing changed; otherwise each problem, naming the item."""
    try:
        result = await evidence.verify_session(db, settings.data, session_id, trust)
    except EvidenceError as exc:
        raise _http(exc) from exc
    await evidence.log_read(db, auditor.username, "verify", session_id)
    await db.commit()
    return VerifyPublic(intact=result.intact, problems=result.problems)


@router.get("/evidence/{session_id}/files/{path:path}", response_class=FileResponse,
            responses={404: problem("no such file in that session's evidence")})
async def evidence_file(session_id: str, path: str, auditor: Auditor, db: DbDep,
                        settings: SettingsDep) -> FileResponse:
    """One item of the package (a recording to replay, a snapshot, a document)."""
    try:
        _, manifest = await evidence.read_manifest(db, settings.data, session_id)
        file = evidence.item_file(settings.data, manifest, path)
    except EvidenceError as exc:
        raise _http(exc) from exc
    item = manifest.item(path)
    action = "replay" if item is not None and item.kind == "recording" else "read"
    await evidence.log_read(db, auditor.username, action, session_id)
    await db.commit()
    return FileResponse(file, headers={"Cache-Control": "no-store"})
