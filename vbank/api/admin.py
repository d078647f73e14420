"""``/api/v1/admin``: accounts and the branch's running policy.

Administrators create users (tellers with their skills, customers) and sign a user out
everywhere (a lost phone, a teller who left, a role changed); administrators and
supervisors open or close the counters, move the digital human's wait threshold and switch
it on or off while the branch runs. The scenario runner prepares test servers through these.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Request, status
from pydantic import BaseModel, Field

from vbank.api.deps import BranchDep, DbDep, SettingsDep, problem, require
from vbank.auth import Principal, Role, hash_password
from vbank.domain.services import SERVICES
from vbank.store import StoreError, logins, repo

router = APIRouter(prefix="/api/v1/admin", tags=["admin"])
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]
Staff = Annotated[Principal, Depends(require(Role.ADMIN, Role.SUPERVISOR))]


class UserCreate(BaseModel):
    username: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")
    password: str = Field(min_length=8, max_length=256)
    role: Role
    display_name: str | None = Field(None, max_length=128)
    skills: list[str] = Field(default_factory=list, max_length=len(SERVICES))
    tier: Literal["standard", "silver", "gold", "platinum"] = "standard"
    points: int = Field(0, ge=0, le=10_000_000,
                        description="starting balance; only on demo and test servers")


class UserPublic(BaseModel):
    username: str
    display_name: str
    role: Role
    skills: list[str]
    tier: str


@router.post("/users", response_model=UserPublic, status_code=status.HTTP_201_CREATED,
             responses={409: problem("a user with that name exists")})
async def create_user(body: UserCreate, _: Admin, db: DbDep,
                      settings: SettingsDep) -> UserPublic:
    unknown = [s for s in body.skills if s not in SERVICES]
    if unknown:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            f"skills: unknown service {unknown[0]!r}")
    if body.skills and body.role is not Role.TELLER:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "skills: tellers only")
    if body.points and not (settings.demo or settings.test_mode):
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            "points: a starting balance is only granted on demo or test "
                            "servers; points are earned in the branch")
    password_hash = await asyncio.to_thread(hash_password, body.password)
    try:
        user = await repo.add_user(db, body.username, password_hash, body.role.value,
                                   skills=body.skills, tier=body.tier, points=body.points,
                                   display_name=body.display_name)
        await db.commit()
    except StoreError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    return UserPublic(username=user.username, display_name=user.display_name,
                      role=Role(user.role), skills=list(user.skills), tier=user.tier)


class SignedOutPublic(BaseModel):
    username: str
    #: tokens of logins from before this are refused (within ``VBANK_AUTH_CACHE_S`` on the
    #: other nodes)
    signed_out_at: datetime


@router.delete("/users/{username}/logins", response_model=SignedOutPublic,
               responses={404: problem("no such user")})
async def sign_out_everywhere(username: str, _: Admin, db: DbDep,
                              request: Request) -> SignedOutPublic:
    """Sign the user out of every login so far; logging in again is not prevented."""
    at = await logins.sign_out_everywhere(db, username)
    if at is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such user")
    await db.commit()
    request.app.state.standings.forget(username)
    return SignedOutPublic(username=username, signed_out_at=at)


class BranchPolicyBody(BaseModel):
    counters: Literal["hours", "open", "closed"] | None = Field(
        None, description="hours: follow VBANK_TELLER_HOURS; open or closed: override them")
    queue_threshold_s: float | None = Field(
        None, ge=0, le=86400, description="wait before the digital human takes over")
    per_service_threshold: bool = Field(
        False, description="go back to each service's own threshold")
    digital_human: bool | None = None


class BranchPolicyPublic(BaseModel):
    counters: str
    counters_open: bool
    queue_threshold_s: float | None
    digital_human: bool
    digital_human_loaded: bool


def _policy(branch: BranchDep) -> BranchPolicyPublic:
    p = branch.policy
    return BranchPolicyPublic(counters=p.counters, counters_open=branch.counters_open(),
                              queue_threshold_s=p.queue_threshold_s,
                              digital_human=p.digital_human,
                              digital_human_loaded=branch.settings.digital_human)


@router.get("/branch", response_model=BranchPolicyPublic)
async def get_policy(_: Staff, branch: BranchDep) -> BranchPolicyPublic:
    return _policy(branch)


@router.put("/branch", response_model=BranchPolicyPublic,
            responses={409: problem("the digital human is not loaded on this server")})
async def set_policy(body: BranchPolicyBody, _: Staff, branch: BranchDep) -> BranchPolicyPublic:
    """Change what is given; waiting customers are routed again within a second."""
    if body.digital_human and not branch.settings.digital_human:
        raise HTTPException(status.HTTP_409_CONFLICT,
                            "the digital human is not loaded on this server "
                            "(started with VBANK_DIGITAL_HUMAN=false)")
    if body.counters is not None:
        branch.policy.counters = body.counters
    if body.per_service_threshold:
        branch.policy.queue_threshold_s = None
    elif body.queue_threshold_s is not None:
        branch.policy.queue_threshold_s = body.queue_threshold_s
    if body.digital_human is not None:
        branch.policy.digital_human = body.digital_human
    return _policy(branch)
