"""The record registry says when a signed PDF must be extended again: ``extend_before``.

ISO 8601 UTC, from :func:`kyso.signer.archive_dates.extend_before`; NULL for JSON and
for rows written before this revision.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A database made before kyso used Alembic is stamped at 0001 and upgraded from there;
    # its tables may already hold what the later revisions add.
    inspector = sa.inspect(op.get_bind())
    if "extend_before" not in {c["name"] for c in inspector.get_columns("signatures")}:
        op.add_column("signatures", sa.Column("extend_before", sa.String(length=32), nullable=True))
    if "ix_signatures_extend_before" not in {i["name"] for i in inspector.get_indexes("signatures")}:
        op.create_index("ix_signatures_extend_before", "signatures", ["extend_before"])


def downgrade() -> None:
    op.drop_index("ix_signatures_extend_before", table_name="signatures")
    with op.batch_alter_table("signatures") as batch:
        batch.drop_column("extend_before")
