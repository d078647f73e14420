"""Lottery prize pools and draws; customers' ratings of their calls.

Revision ID: 0004
Revises: 0003
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "lottery_prizes",
        sa.Column("lottery_id", sa.String(32), primary_key=True),
        sa.Column("prize_id", sa.String(32), primary_key=True),
        sa.Column("stock", sa.Integer, nullable=False),
        sa.CheckConstraint("stock >= 0", name="ck_lottery_prizes_stock"),
    )
    op.create_table(
        "lottery_draws",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("customer", sa.String(64), nullable=False),
        sa.Column("lottery_id", sa.String(32), nullable=False),
        sa.Column("prize_id", sa.String(32), nullable=True),
        sa.Column("cost", sa.Integer, nullable=False),
        sa.Column("idempotency_key", sa.String(96), nullable=False),
        sa.Column("request_sha256", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("customer", "idempotency_key", name="uq_lottery_draws_key"),
    )
    op.create_index("ix_lottery_draws_customer", "lottery_draws", ["customer", "lottery_id",
                                                                   "at"])
    op.create_table(
        "call_ratings",
        sa.Column("session_id", sa.String(40), primary_key=True),
        sa.Column("customer", sa.String(64), nullable=False),
        sa.Column("stars", sa.Integer, nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("stars BETWEEN 1 AND 5", name="ck_call_ratings_stars"),
    )


def downgrade() -> None:
    op.drop_table("call_ratings")
    op.drop_index("ix_lottery_draws_customer", "lottery_draws")
    op.drop_table("lottery_draws")
    op.drop_table("lottery_prizes")
