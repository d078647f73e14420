"""Repositories: the SQL behind users, call sessions and recordings."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from vbank.domain.ledger import TIER_FROM, Tier
from vbank.store import StoreError
from vbank.store.models import (
    CallSession,
    PointsAccount,
    PointsLot,
    PointsTransaction,
    Recording,
    User,
)


def utcnow() -> datetime:
    return datetime.now(UTC)


#: the advisory lock nodes take while they seed the database at start (any fixed number)
SEEDING_LOCK = 0x7662616E6B  # "vbank"


async def seeding(db: AsyncSession) -> None:
    """Hold the seeding lock until this transaction ends: several nodes starting at once
    with ``--demo`` add the demo users, items and prize pools one after the other, each
    seeing what the previous one added (PostgreSQL; SQLite serves one node)."""
    if db.get_bind().dialect.name == "postgresql":
        await db.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SEEDING_LOCK})


async def add_user(db: AsyncSession, username: str, password_hash: str, role: str,
                   skills: Iterable[str] = (), tier: str = "standard", points: int = 0,
                   display_name: str | None = None) -> User:
    user = User(username=username, display_name=display_name or username,
                password_hash=password_hash, role=role, skills=list(skills), tier=tier,
                points=points)
    db.add(user)
    try:
        await db.flush()
    except IntegrityError as exc:
        await db.rollback()
        raise StoreError(f"user {username!r} already exists") from exc
    if role == "customer":
        await open_account(db, username, points, Tier(tier))
    return user


async def open_account(db: AsyncSession, customer: str, points: int, tier: Tier) -> None:
    """A new customer's points account, with the opening balance and tier as its first earn.

    A tier given at creation is growth value enough for it; the opening points never expire.
    """
    growth = max(points, dict(TIER_FROM)[tier])
    db.add(PointsAccount(customer=customer, balance=points, growth=growth,
                         version=1 if points or growth else 0))
    if points or growth:
        db.add(PointsTransaction(customer=customer, key="opening", kind="earn", points=points,
                                 growth=growth, at=utcnow(), expires_at=None, reason="opening",
                                 used=[]))
    if points:
        db.add(PointsLot(customer=customer, key="opening", left=points, expires_at=None))
    await db.flush()


async def get_user(db: AsyncSession, username: str) -> User | None:
    return (await db.execute(select(User).where(User.username == username))).scalar_one_or_none()


async def add_session(db: AsyncSession, session: CallSession) -> None:
    db.add(session)
    await db.flush()


async def get_session(db: AsyncSession, session_id: str) -> CallSession | None:
    return await db.get(CallSession, session_id)


async def open_sessions(db: AsyncSession, node: str) -> list[CallSession]:
    """Sessions not ended that ``node`` hosts ("" for a single node's), oldest first."""
    hosted = CallSession.node.is_(None) if not node else CallSession.node == node
    rows = await db.execute(select(CallSession).where(CallSession.state != "ended", hosted)
                            .order_by(CallSession.created_at))
    return list(rows.scalars())


async def add_recording(db: AsyncSession, recording: Recording) -> None:
    db.add(recording)
    await db.flush()


async def recordings_of(db: AsyncSession, session_id: str) -> list[Recording]:
    rows = await db.execute(select(Recording).where(Recording.session_id == session_id)
                            .order_by(Recording.id))
    return list(rows.scalars())
