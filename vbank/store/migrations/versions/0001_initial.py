"""Users, call sessions and their recordings.

Revision ID: 0001
Revises:
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("display_name", sa.String(128), nullable=False),
        sa.Column("password_hash", sa.String(256), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("skills", sa.JSON, nullable=False),
        sa.Column("tier", sa.String(16), nullable=False),
        sa.Column("points", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(),
                  nullable=False),
    )
    op.create_index("ix_users_username", "users", ["username"], unique=True)
    op.create_table(
        "call_sessions",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("reference", sa.String(24), nullable=False, unique=True),
        sa.Column("customer", sa.String(64), nullable=False),
        sa.Column("teller", sa.String(64), nullable=True),
        sa.Column("service", sa.String(32), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("tellers", sa.JSON, nullable=False),
    )
    op.create_index("ix_call_sessions_customer", "call_sessions", ["customer"])
    op.create_index("ix_call_sessions_teller", "call_sessions", ["teller"])
    op.create_table(
        "recordings",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("session_id", sa.String(40), sa.ForeignKey("call_sessions.id"),
                  nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("bytes", sa.Integer, nullable=False),
        sa.Column("video_frames", sa.Integer, nullable=False),
        sa.Column("audio_frames", sa.Integer, nullable=False),
        sa.Column("duration_s", sa.Float, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_recordings_session_id", "recordings", ["session_id"])


def downgrade() -> None:
    op.drop_table("recordings")
    op.drop_table("call_sessions")
    op.drop_table("users")
