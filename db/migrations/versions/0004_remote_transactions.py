"""Remote signing: the provider transaction of a signing session whose clinician signs on
a phone (``remote_transactions``), kept in the database so that a restart loses none.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A database made before kyso used Alembic is stamped at 0001 and upgraded from there;
    # it may already hold the table (metadata.create_all made it).
    if "remote_transactions" in sa.inspect(op.get_bind()).get_table_names():
        return
    op.create_table(
        "remote_transactions",
        sa.Column("session_id", sa.String(length=64), primary_key=True),
        sa.Column("provider", sa.String(length=100), nullable=False),
        sa.Column("transaction_id", sa.String(length=64), nullable=False),
        sa.Column("reference", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("signatures", sa.LargeBinary(), nullable=True),
        sa.Column("result", sa.LargeBinary(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_poll_at", sa.Float(), nullable=False),
        sa.Column("lease_until", sa.Float(), nullable=True),
        sa.Column("updated", sa.Float(), nullable=False),
    )
    op.create_index(
        "ix_remote_transactions_transaction_id", "remote_transactions", ["transaction_id"], unique=True
    )
    op.create_index("ix_remote_transactions_status", "remote_transactions", ["status"])
    op.create_index("ix_remote_transactions_next_poll_at", "remote_transactions", ["next_poll_at"])


def downgrade() -> None:
    op.drop_table("remote_transactions")
