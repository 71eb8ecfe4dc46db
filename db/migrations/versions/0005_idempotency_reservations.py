"""Idempotency-Key reservations: a key is claimed before the operation runs, marked done in
its audit transaction, and answered after the commit (:mod:`kyso.db.reservations`).

``status``, ``headers`` and ``body`` may be NULL (claimed, not answered yet); ``token``
names the claim and ``audit_seq`` the entry that fulfilled it. Rows kept before this
revision are answers, and stay valid.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A database made before kyso used Alembic is stamped at 0001 and upgraded from there;
    # its table may already hold what this revision adds.
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("idempotency")}
    with op.batch_alter_table("idempotency") as batch:  # SQLite rebuilds the table
        batch.alter_column("status", existing_type=sa.Integer(), nullable=True)
        batch.alter_column("headers", existing_type=sa.Text(), nullable=True)
        batch.alter_column("body", existing_type=sa.LargeBinary(), nullable=True)
        if "token" not in columns:
            batch.add_column(sa.Column("token", sa.String(length=32), nullable=True))
        if "audit_seq" not in columns:
            batch.add_column(sa.Column("audit_seq", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    op.execute("DELETE FROM idempotency WHERE status IS NULL")
    with op.batch_alter_table("idempotency") as batch:
        batch.drop_column("audit_seq")
        batch.drop_column("token")
        batch.alter_column("body", existing_type=sa.LargeBinary(), nullable=False)
        batch.alter_column("headers", existing_type=sa.Text(), nullable=False)
        batch.alter_column("status", existing_type=sa.Integer(), nullable=False)
