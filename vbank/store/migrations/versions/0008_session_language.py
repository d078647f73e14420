"""The language each session is served in (``call_sessions.language``). Sessions stored
before it were served in the server's one language (``VBANK_LANG``), which the database
does not know: they are marked ``en``, that setting's default.

Revision ID: 0008
Revises: 0007
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("call_sessions") as table:
        table.add_column(sa.Column("language", sa.String(8), nullable=False,
                                   server_default="en"))


def downgrade() -> None:
    with op.batch_alter_table("call_sessions") as table:
        table.drop_column("language")
