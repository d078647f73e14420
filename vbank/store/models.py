"""Tables. Changing one means writing a migration in ``store/migrations/versions``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    display_name: Mapped[str] = mapped_column(String(128))
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16))
    skills: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: the tier and points the user was created with; the live ones are in the points ledger
    tier: Mapped[str] = mapped_column(String(16), default="standard")
    points: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True),
                                                 server_default=func.now())
    #: an administrator signed the user out everywhere: logins from before this are refused
    signed_out_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True),
                                                           nullable=True)


class RevokedLogin(Base):
    """A login signed out (``POST /auth/logout``): every token of it is refused. Kept until
    the login could have ended by itself (``VBANK_LOGIN_MAX_S`` after it began)."""

    __tablename__ = "revoked_logins"

    login_id: Mapped[str] = mapped_column(String(32), primary_key=True)  # the tokens' sid
    username: Mapped[str] = mapped_column(String(64))
    until: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class CallSession(Base):
    """A customer's visit: queued, in a call, ended. Survives teller changes and reconnects."""

    __tablename__ = "call_sessions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    reference: Mapped[str] = mapped_column(String(24), unique=True)
    customer: Mapped[str] = mapped_column(String(64), index=True)
    teller: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    service: Mapped[str] = mapped_column(String(32))
    #: the language the customer is served in (``en``, ``zh``): voice, texts, hearing
    language: Mapped[str] = mapped_column(String(8), default="en", server_default="en")
    state: Mapped[str] = mapped_column(String(16))
    outcome: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    #: every teller who served this session, in order (a dropped teller stays listed)
    tellers: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: the business flow run in this session (``scenes/flows``), its step and saved state
    flow: Mapped[str | None] = mapped_column(String(32), nullable=True)
    flow_step: Mapped[str | None] = mapped_column(String(32), nullable=True)
    flow_state: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    #: an interrupted session whose confirmed steps this one carries on from
    resumed_from: Mapped[str | None] = mapped_column(String(40), nullable=True)
    #: the node hosting the session's media and flow (multi-node mode); None on one node
    node: Mapped[str | None] = mapped_column(String(128), nullable=True)


class Recording(Base):
    """One recorded leg of a session: a WebM file, its hash for the evidence package."""

    __tablename__ = "recordings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("call_sessions.id"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    path: Mapped[str] = mapped_column(Text)  # relative to the data directory
    sha256: Mapped[str] = mapped_column(String(64))
    bytes: Mapped[int] = mapped_column(Integer)
    video_frames: Mapped[int] = mapped_column(Integer)
    audio_frames: Mapped[int] = mapped_column(Integer)
    duration_s: Mapped[float] = mapped_column()
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SessionRecord(Base):
    """Something that happened in a session and belongs in its evidence, in order.

    ``kind``: ``caption`` (who said what), ``identity`` (ID claimed, checked, verified),
    ``snapshot`` (a face picture; ``path`` is the file), ``document`` (pushed; ``path`` and
    ``sha256``), ``consent``, ``signature`` (``path`` is the drawn image), ``answer``,
    ``acknowledgement``, ``step`` (the flow moved on), ``qc_alert``, ``qc_result``.
    Append-only: rows are never updated.
    """

    __tablename__ = "session_records"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("call_sessions.id"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    kind: Mapped[str] = mapped_column(String(24))
    #: who did it: a username, or ``digital_human`` / ``system``
    actor: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    path: Mapped[str | None] = mapped_column(Text, nullable=True)  # relative to the data dir
    sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)


class RiskAssessment(Base):
    """A completed risk questionnaire: the customer's level until ``valid_until``."""

    __tablename__ = "risk_assessments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer: Mapped[str] = mapped_column(String(64), index=True)
    session_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    answers: Mapped[dict[str, str]] = mapped_column(JSON)
    score: Mapped[int] = mapped_column(Integer)
    level: Mapped[str] = mapped_column(String(2))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    valid_until: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class EvidenceEntry(Base):
    """A sealed session's manifest, as a link of the branch's hash chain.

    ``chain_sha256`` = SHA-256 over ``seq``, ``prev_sha256`` and ``manifest_sha256``;
    ``signature`` is the branch key's Ed25519 signature of ``chain_sha256`` (hex), made with
    the key the keyring names ``key_id`` (None: sealed before entries named their key).
    """

    __tablename__ = "evidence"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    session_id: Mapped[str] = mapped_column(String(40), unique=True, index=True)
    service: Mapped[str] = mapped_column(String(32))
    sealed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    manifest_path: Mapped[str] = mapped_column(Text)  # relative to the data dir
    manifest_sha256: Mapped[str] = mapped_column(String(64))
    prev_sha256: Mapped[str] = mapped_column(String(64))
    chain_sha256: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(String(128))
    key_id: Mapped[str | None] = mapped_column(String(16), nullable=True)


class EvidenceAnchor(Base):
    """The chain's head as each seal left it, written in the seal's transaction and never
    changed: verify compares the chain with these, so an entry deleted or rewritten shows.

    Apart from ``evidence`` so that the operator can let the server's role insert here and
    nothing more (PostgreSQL ``GRANT SELECT, INSERT``). ``timestamp``: the RFC 3161 token of
    ``chain_sha256`` from the configured authority (None when none is configured).
    """

    __tablename__ = "evidence_anchors"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    session_id: Mapped[str] = mapped_column(String(40), unique=True, index=True)
    chain_sha256: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(String(128))
    key_id: Mapped[str | None] = mapped_column(String(16), nullable=True)
    anchored_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    timestamp: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)


class AuditRead(Base):
    """Every read of evidence: who, what, when (auditors are audited too)."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))  # list | read | verify | export | replay
    target: Mapped[str | None] = mapped_column(String(64), nullable=True)


class PointsAccount(Base):
    """A customer's spendable balance and growth value: the sum of their transactions."""

    __tablename__ = "points_accounts"
    __table_args__ = (CheckConstraint("balance >= 0", name="ck_points_accounts_balance"),)

    customer: Mapped[str] = mapped_column(String(64), primary_key=True)
    balance: Mapped[int] = mapped_column(Integer)
    growth: Mapped[int] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer)  # transactions so far


class PointsLot(Base):
    """What is left of one earn (or of what a refund gave back to it), and when it expires."""

    __tablename__ = "points_lots"
    __table_args__ = (CheckConstraint('"left" >= 0', name="ck_points_lots_left"),)

    customer: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(96), primary_key=True)
    left: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class PointsTransaction(Base):
    """One line of the ledger; append-only. ``used``: ``[[lot key, points], ...]``."""

    __tablename__ = "points_transactions"
    __table_args__ = (UniqueConstraint("customer", "key", name="uq_points_transactions_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(96))
    kind: Mapped[str] = mapped_column(String(8))
    points: Mapped[int] = mapped_column(Integer)
    growth: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    reason: Mapped[str] = mapped_column(String(96))
    used: Mapped[list[list[Any]]] = mapped_column(JSON)


class MallItem(Base):
    """A catalogue entry: its definition (``domain.mall.parse_item``'s input) and live stock."""

    __tablename__ = "mall_items"
    __table_args__ = (CheckConstraint("stock >= 0", name="ck_mall_items_stock"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    stock: Mapped[int] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean)


class MallOrder(Base):
    """A redemption. ``idempotency_key`` is the client's, unique per customer."""

    __tablename__ = "mall_orders"
    __table_args__ = (UniqueConstraint("customer", "idempotency_key", name="uq_mall_orders_key"),
                      Index("ix_mall_orders_customer_item", "customer", "item_id"))

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    customer: Mapped[str] = mapped_column(String(64))
    item_id: Mapped[str] = mapped_column(String(32))
    quantity: Mapped[int] = mapped_column(Integer)
    points: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(12))  # placed | cancelled
    idempotency_key: Mapped[str] = mapped_column(String(96))
    request_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class LotteryPrize(Base):
    """What is left of one prize in a lottery's pool."""

    __tablename__ = "lottery_prizes"
    __table_args__ = (CheckConstraint("stock >= 0", name="ck_lottery_prizes_stock"),)

    lottery_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    prize_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    stock: Mapped[int] = mapped_column(Integer)


class LotteryDraw(Base):
    """One draw: what it cost and what it won (``prize_id`` None: nothing)."""

    __tablename__ = "lottery_draws"
    __table_args__ = (UniqueConstraint("customer", "idempotency_key",
                                       name="uq_lottery_draws_key"),
                      Index("ix_lottery_draws_customer", "customer", "lottery_id", "at"))

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    customer: Mapped[str] = mapped_column(String(64))
    lottery_id: Mapped[str] = mapped_column(String(32))
    prize_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    cost: Mapped[int] = mapped_column(Integer)
    idempotency_key: Mapped[str] = mapped_column(String(96))
    request_sha256: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CallRating(Base):
    """A customer's satisfaction with a finished call (1–5 stars); one per session."""

    __tablename__ = "call_ratings"
    __table_args__ = (CheckConstraint("stars BETWEEN 1 AND 5", name="ck_call_ratings_stars"),)

    session_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    customer: Mapped[str] = mapped_column(String(64))
    stars: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
