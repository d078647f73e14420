"""The node hosting each session (multi-node mode; empty on a single node).

Revision ID: 0005
Revises: 0004
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("call_sessions") as table:
        table.add_column(sa.Column("node", sa.String(128), nullable=True))
        table.create_index("ix_call_sessions_node_state", ["node", "state"])


def downgrade() -> None:
    with op.batch_alter_table("call_sessions") as table:
        table.drop_index("ix_call_sessions_node_state")
        table.drop_column("node")
