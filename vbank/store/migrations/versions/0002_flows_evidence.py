"""Business flows in sessions, session records, risk assessments, evidence chain, audit log.

Revision ID: 0002
Revises: 0001
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("call_sessions") as batch:
        batch.add_column(sa.Column("flow", sa.String(32), nullable=True))
        batch.add_column(sa.Column("flow_step", sa.String(32), nullable=True))
        batch.add_column(sa.Column("flow_state", sa.JSON, nullable=True))
        batch.add_column(sa.Column("resumed_from", sa.String(40), nullable=True))
    op.create_table(
        "session_records",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("session_id", sa.String(40), sa.ForeignKey("call_sessions.id"),
                  nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
        sa.Column("path", sa.Text, nullable=True),
        sa.Column("sha256", sa.String(64), nullable=True),
    )
    op.create_index("ix_session_records_session_id", "session_records", ["session_id"])
    op.create_table(
        "risk_assessments",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("customer", sa.String(64), nullable=False),
        sa.Column("session_id", sa.String(40), nullable=True),
        sa.Column("answers", sa.JSON, nullable=False),
        sa.Column("score", sa.Integer, nullable=False),
        sa.Column("level", sa.String(2), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_risk_assessments_customer", "risk_assessments", ["customer"])
    op.create_table(
        "evidence",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("session_id", sa.String(40), nullable=False),
        sa.Column("service", sa.String(32), nullable=False),
        sa.Column("sealed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("manifest_path", sa.Text, nullable=False),
        sa.Column("manifest_sha256", sa.String(64), nullable=False),
        sa.Column("prev_sha256", sa.String(64), nullable=False),
        sa.Column("chain_sha256", sa.String(64), nullable=False),
        sa.Column("signature", sa.String(128), nullable=False),
    )
    op.create_index("ix_evidence_session_id", "evidence", ["session_id"], unique=True)
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("target", sa.String(64), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("audit_log")
    op.drop_table("evidence")
    op.drop_table("risk_assessments")
    op.drop_table("session_records")
    with op.batch_alter_table("call_sessions") as batch:
        for column in ("resumed_from", "flow_state", "flow_step", "flow"):
            batch.drop_column(column)
