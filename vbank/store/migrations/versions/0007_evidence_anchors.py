"""Evidence that the data directory's holder cannot rewrite: each chain entry names the key
that signed it, and each seal anchors the chain's head in ``evidence_anchors`` (with an
RFC 3161 timestamp when an authority is configured). Entries sealed before keep no key id
and no anchor; verify tries every keyring key on them.

Revision ID: 0007
Revises: 0006
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("evidence") as table:
        table.add_column(sa.Column("key_id", sa.String(16), nullable=True))
    op.create_table(
        "evidence_anchors",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("session_id", sa.String(40), nullable=False),
        sa.Column("chain_sha256", sa.String(64), nullable=False),
        sa.Column("signature", sa.String(128), nullable=False),
        sa.Column("key_id", sa.String(16), nullable=True),
        sa.Column("anchored_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("timestamp", sa.LargeBinary, nullable=True),
    )
    op.create_index("ix_evidence_anchors_session_id", "evidence_anchors", ["session_id"],
                    unique=True)


def downgrade() -> None:
    op.drop_index("ix_evidence_anchors_session_id", table_name="evidence_anchors")
    op.drop_table("evidence_anchors")
    with op.batch_alter_table("evidence") as table:
        table.drop_column("key_id")
