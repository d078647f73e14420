"""What customers do that earns points outside business flows: rating a finished call
(``POST /api/v1/sessions/{id}/rating``) and coming into the lobby (``POST /api/v1/lobby/visits``,
which the 3D client sends when it enters the hall; the first of a day earns)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Request, status
from pydantic import BaseModel, Field
from sqlalchemy.exc import IntegrityError

from vbank.api.deps import CurrentCustomer, DbDep
from vbank.store import repo
from vbank.store.models import CallRating

router = APIRouter(prefix="/api/v1", tags=["points"])


class RatingCreate(BaseModel):
    stars: int = Field(ge=1, le=5, description="1 (poor) to 5 (excellent)")
    comment: str = Field("", max_length=500)


class RatingPublic(BaseModel):
    session_id: str
    stars: int
    comment: str
    at: datetime
    points_earned: int = Field(description="points this rating earned (0 when repeated)")


class VisitPublic(BaseModel):
    points_earned: int = Field(description="0 when today's visit was counted already")
    balance: int | None


@router.post("/sessions/{session_id}/rating", response_model=RatingPublic,
             status_code=status.HTTP_201_CREATED,
             responses={404: {"description": "no such session of yours"},
                        409: {"description": "not finished yet, or rated differently before"}})
async def rate_call(session_id: Annotated[str, Path(max_length=40)], body: RatingCreate,
                    customer: CurrentCustomer, db: DbDep, request: Request) -> RatingPublic:
    """Rate a finished call, once. Sending the same rating again changes nothing."""
    row = await repo.get_session(db, session_id)
    if row is None or row.customer != customer.username:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such session of yours")
    if row.started_at is None or row.ended_at is None:
        raise HTTPException(status.HTTP_409_CONFLICT, "a call can be rated once it has ended")
    rating = await db.get(CallRating, session_id)
    if rating is not None:
        if (rating.stars, rating.comment) != (body.stars, body.comment):
            raise HTTPException(status.HTTP_409_CONFLICT, "this call was rated already")
        return RatingPublic(session_id=session_id, stars=rating.stars, comment=rating.comment,
                            at=rating.at, points_earned=0)
    rating = CallRating(session_id=session_id, customer=customer.username, stars=body.stars,
                        comment=body.comment, at=datetime.now(UTC))
    db.add(rating)
    try:
        await db.commit()
    except IntegrityError as exc:  # rated at the same moment from elsewhere
        raise HTTPException(status.HTTP_409_CONFLICT, "this call was rated already") from exc
    earned = await request.app.state.rewards.award(customer.username, "call_rated", session_id)
    return RatingPublic(session_id=session_id, stars=rating.stars, comment=rating.comment,
                        at=rating.at,
                        points_earned=earned.points if earned and earned.earned else 0)


@router.post("/lobby/visits", response_model=VisitPublic)
async def lobby_visit(customer: CurrentCustomer, request: Request) -> VisitPublic:
    """The customer came into the lobby; the first visit of a day earns points."""
    earned = await request.app.state.rewards.award(customer.username, "lobby_visit", "")
    return VisitPublic(points_earned=earned.points if earned and earned.earned else 0,
                       balance=earned.balance if earned else None)
