"""Points ledger (accounts, lots, transactions), mall items and orders.

Revision ID: 0003
Revises: 0002
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "points_accounts",
        sa.Column("customer", sa.String(64), primary_key=True),
        sa.Column("balance", sa.Integer, nullable=False),
        sa.Column("growth", sa.Integer, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.CheckConstraint("balance >= 0", name="ck_points_accounts_balance"),
    )
    op.create_table(
        "points_lots",
        sa.Column("customer", sa.String(64), primary_key=True),
        sa.Column("key", sa.String(96), primary_key=True),
        sa.Column("left", sa.Integer, nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint('"left" >= 0', name="ck_points_lots_left"),
    )
    op.create_table(
        "points_transactions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("customer", sa.String(64), nullable=False),
        sa.Column("key", sa.String(96), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("points", sa.Integer, nullable=False),
        sa.Column("growth", sa.Integer, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.String(96), nullable=False),
        sa.Column("used", sa.JSON, nullable=False),
        sa.UniqueConstraint("customer", "key", name="uq_points_transactions_key"),
    )
    op.create_table(
        "mall_items",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column("stock", sa.Integer, nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.CheckConstraint("stock >= 0", name="ck_mall_items_stock"),
    )
    op.create_table(
        "mall_orders",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("customer", sa.String(64), nullable=False),
        sa.Column("item_id", sa.String(32), nullable=False),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.Column("points", sa.Integer, nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("idempotency_key", sa.String(96), nullable=False),
        sa.Column("request_sha256", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("customer", "idempotency_key", name="uq_mall_orders_key"),
    )
    op.create_index("ix_mall_orders_customer_item", "mall_orders", ["customer", "item_id"])


def downgrade() -> None:
    op.drop_index("ix_mall_orders_customer_item", "mall_orders")
    for table in ("mall_orders", "mall_items", "points_transactions", "points_lots",
                  "points_accounts"):
        op.drop_table(table)
