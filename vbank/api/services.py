"""``/api/v1/services`` and ``/api/v1/sessions``: what the branch offers, and one session."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, status
from pydantic import BaseModel

from vbank.api.deps import BranchDep, CurrentUser, DbDep, problem, require
from vbank.auth import Principal, Role
from vbank.domain.services import SERVICES
from vbank.store import repo

router = APIRouter(prefix="/api/v1", tags=["services"])


class ServicePublic(BaseModel):
    id: str
    name: dict[str, str]
    queue_length: int
    estimated_wait_s: float


class RecordingPublic(BaseModel):
    role: str
    path: str
    sha256: str
    bytes: int
    duration_s: float
    audio_frames: int
    video_frames: int


class SessionPublic(BaseModel):
    session_id: str
    reference: str
    service: str
    #: the language the customer is served in
    language: str
    state: str
    flow: str | None = None
    flow_step: str | None
    #: the interrupted session whose confirmed steps this one carried on
    resumed_from: str | None = None
    customer: str
    teller: str | None
    tellers: list[str]
    outcome: str | None
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    recordings: list[RecordingPublic]


@router.get("/services", response_model=list[ServicePublic])
async def list_services(_: CurrentUser, branch: BranchDep) -> list[ServicePublic]:
    lengths = await branch.queue.lengths()
    return [ServicePublic(id=s.id, name={"en": s.name_en, "zh": s.name_zh},
                          queue_length=lengths[s.id],
                          estimated_wait_s=await branch.queue.estimate(s.id, lengths[s.id] + 1))
            for s in SERVICES.values()]


@router.get("/sessions/{session_id}", response_model=SessionPublic,
            responses={404: problem("no session of yours with that id")})
async def get_session(session_id: str, principal: CurrentUser, db: DbDep) -> Any:
    row = await repo.get_session(db, session_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such session")
    allowed = (principal.role in (Role.SUPERVISOR, Role.AUDITOR)
               or principal.username == row.customer
               or (principal.role is Role.TELLER and principal.username in row.tellers))
    if not allowed:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "not your session")
    recordings = await repo.recordings_of(db, session_id)
    return SessionPublic(
        session_id=row.id, reference=row.reference, service=row.service,
        language=row.language, state=row.state,
        flow=row.flow, flow_step=row.flow_step, resumed_from=row.resumed_from,
        customer=row.customer, teller=row.teller, tellers=row.tellers,
        outcome=row.outcome, created_at=row.created_at, started_at=row.started_at,
        ended_at=row.ended_at,
        recordings=[RecordingPublic(role=r.role, path=r.path, sha256=r.sha256, bytes=r.bytes,
                                    duration_s=r.duration_s, audio_frames=r.audio_frames,
                                    video_frames=r.video_frames) for r in recordings])


class TellerPublic(BaseModel):
    username: str
    status: str
    skills: list[str]
    session_id: str | None


class QueuesPublic(BaseModel):
    services: list[dict[str, Any]]
    tellers: list[TellerPublic]


@router.get("/queues", response_model=QueuesPublic)
async def queues(_: Annotated[Principal, Depends(require(Role.TELLER, Role.SUPERVISOR,
                                                          Role.ADMIN))],
                 branch: BranchDep) -> QueuesPublic:
    """Every queue with who waits and for how long, and every teller's state (staff only)."""
    return QueuesPublic(services=await branch.board.queues(), tellers=[
        TellerPublic(username=t.teller_id, status=t.status.value, skills=sorted(t.skills),
                     session_id=t.session_id) for t in await branch.queue.tellers()])
