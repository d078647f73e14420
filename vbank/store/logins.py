"""Logins in the database, where every node sees them: what stands of a token's user and
login (``vbank.auth.Standing``), one login signed out, all of a user's signed out."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete, exists, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from vbank.auth import Principal, Standing
from vbank.store.models import RevokedLogin, User


def _epoch(at: datetime) -> float:
    # SQLite gives back naive datetimes: they were written in UTC
    return (at if at.tzinfo is not None else at.replace(tzinfo=UTC)).timestamp()


async def standing(db: AsyncSession, username: str, login_id: str) -> Standing:
    """The user's role and sign-out time, and whether this login was signed out: one query."""
    revoked = exists().where(RevokedLogin.login_id == login_id)
    row = (await db.execute(select(User.role, User.signed_out_at, revoked)
                            .where(User.username == username))).one_or_none()
    if row is None:
        return Standing(role=None)
    role, signed_out_at, login_revoked = row
    return Standing(role=role, login_revoked=bool(login_revoked),
                    signed_out_at=_epoch(signed_out_at) if signed_out_at else None)


async def sign_out(db: AsyncSession, principal: Principal, max_login_s: int) -> None:
    """Refuse every token of this login from now on, until it could have ended anyway; the
    rows of logins that have ended by now are dropped on the way."""
    now = datetime.now(UTC)
    until = datetime.fromtimestamp(principal.auth_time + max_login_s, UTC)
    await db.execute(delete(RevokedLogin).where(RevokedLogin.until < now))
    if await db.get(RevokedLogin, principal.login_id) is not None:
        return  # signed out already
    db.add(RevokedLogin(login_id=principal.login_id, username=principal.username, until=until))
    try:
        await db.flush()
    except IntegrityError:  # signed out at the same moment by another request
        await db.rollback()


async def sign_out_everywhere(db: AsyncSession, username: str) -> datetime | None:
    """Refuse every token of the user's logins so far; when, or None for no such user."""
    now = datetime.now(UTC)
    done = await db.execute(update(User).where(User.username == username)
                            .values(signed_out_at=now))
    return now if done.rowcount else None  # type: ignore[attr-defined]
