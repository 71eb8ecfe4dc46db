"""The record registry names no key for an extension: ``signatures.key`` may be NULL.

An extension (B-LT, B-LTA, a new archive timestamp) adds validation data and a document
timestamp, signed by no key alias of ours; 0001 stored an empty string for it.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("signatures") as batch:  # SQLite rebuilds the table
        batch.alter_column("key", existing_type=sa.String(length=200), nullable=True)
    op.execute("UPDATE signatures SET key = NULL WHERE key = ''")


def downgrade() -> None:
    op.execute("UPDATE signatures SET key = '' WHERE key IS NULL")
    with op.batch_alter_table("signatures") as batch:
        batch.alter_column("key", existing_type=sa.String(length=200), nullable=False)
