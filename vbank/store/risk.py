"""Risk assessments in the database: record one within the day's attempts, find the valid one.

Times are stored in UTC (SQLite keeps no zone: it gives back naive UTC, which is made aware
again here), so rows compare the same on SQLite and PostgreSQL. Functions flush; the caller
commits. The REST API and the in-call flows both use these.

Counting the day's attempts and adding one are one step: a customer's attempts wait for each
other from the count until the caller's transaction ends (a lock per customer on
PostgreSQL, the database's write lock on SQLite), or several sent at once would all find
the count from before any of them, and a customer could shop for the level they want.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from vbank.domain.risk import Questionnaire, check_attempts
from vbank.domain.risk_questionnaire import load_questionnaire
from vbank.store.models import RiskAssessment

#: the key space of the per-customer advisory locks (PostgreSQL; any fixed 32-bit number)
ATTEMPTS_LOCK = 0x7269736B  # "risk"


def as_utc(moment: datetime) -> datetime:
    """An aware UTC time; a naive one is taken to be UTC already."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


async def record_assessment(db: AsyncSession, customer: str, answers: Mapping[str, str],
                            now: datetime, session_id: str | None = None, per_day: int = 3,
                            questionnaire: Questionnaire | None = None) -> RiskAssessment:
    """Score a customer's answers and store the result.

    ``now`` should carry the branch's time zone: the day's attempts are counted on its
    calendar day. Raises ``TooManyAttempts`` when ``per_day`` were already made today, then
    ``UnknownQuestion``, ``UnknownOption`` or ``IncompleteAnswers`` for answers that cannot
    be scored (those attempts are not stored and do not count). From the count on, the
    customer's other attempts wait for the caller's transaction: commit or roll back soon.
    """
    questionnaire = questionnaire or load_questionnaire()
    await _hold_attempts(db, customer)
    # Only the latest ``per_day`` attempts can all fall on today.
    recent = await db.execute(
        select(RiskAssessment.created_at).where(RiskAssessment.customer == customer)
        .order_by(RiskAssessment.created_at.desc(), RiskAssessment.id.desc()).limit(per_day))
    check_attempts(recent.scalars(), now, per_day)
    assessment = questionnaire.score(answers, now)
    row = RiskAssessment(customer=customer, session_id=session_id, answers=assessment.answers,
                         score=assessment.score, level=assessment.level.value,
                         created_at=as_utc(now), valid_until=as_utc(assessment.valid_until))
    db.add(row)
    await db.flush()
    return row


async def _hold_attempts(db: AsyncSession, customer: str) -> None:
    """Make the customer's other attempts wait until this transaction ends."""
    dialect = db.get_bind().dialect.name
    if dialect == "postgresql":
        # an advisory lock needs no row to lock, and holds across nodes
        await db.execute(text("SELECT pg_advisory_xact_lock(:space, hashtext(:customer))"),
                         {"space": ATTEMPTS_LOCK, "customer": customer})
    elif dialect == "sqlite":
        # pysqlite begins a transaction only at the first write, and SQLite takes its write
        # lock only then: take it before the count. A transaction already open has written,
        # so it holds the lock already (and reads what was last committed).
        raw = (await (await db.connection()).get_raw_connection()).driver_connection
        if raw is not None and not raw.in_transaction:
            await db.execute(text("BEGIN IMMEDIATE"))


async def current_level(db: AsyncSession, customer: str, now: datetime) -> RiskAssessment | None:
    """The customer's latest assessment still valid at ``now``, if any."""
    row = (await db.execute(
        select(RiskAssessment)
        .where(RiskAssessment.customer == customer, RiskAssessment.valid_until > as_utc(now))
        .order_by(RiskAssessment.created_at.desc(), RiskAssessment.id.desc()).limit(1)
    )).scalar_one_or_none()
    if row is not None:
        # Not a change to write back: the same instant, with its zone.
        for name in ("created_at", "valid_until"):
            set_committed_value(row, name, as_utc(getattr(row, name)))
    return row
