"""Signed-out logins: one login's tokens (``revoked_logins``, kept until the login could
have ended) and all of a user's logins before a time (``users.signed_out_at``).

Revision ID: 0006
Revises: 0005
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "revoked_logins",
        sa.Column("login_id", sa.String(32), primary_key=True),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_revoked_logins_until", "revoked_logins", ["until"])
    with op.batch_alter_table("users") as table:
        table.add_column(sa.Column("signed_out_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users") as table:
        table.drop_column("signed_out_at")
    op.drop_index("ix_revoked_logins_until", table_name="revoked_logins")
    op.drop_table("revoked_logins")
