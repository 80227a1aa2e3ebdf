"""ingest: transactions, key-values, archived files

Revision ID: 0004_ingest
Revises: 0001
Create Date: 2026-11-26 04:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import dataferry.db.base

revision: str = "0004_ingest"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ingest_transactions",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("submitter", sa.String(length=255), nullable=True),
        sa.Column("project", sa.String(length=255), nullable=True),
        sa.Column("instrument", sa.String(length=255), nullable=True),
        sa.Column("origin", sa.String(length=16), nullable=False),
        sa.Column("archive_endpoint", sa.String(length=128), nullable=False),
        sa.Column("archive_path", sa.Text(), nullable=False),
        sa.Column("file_count", sa.Integer(), nullable=False),
        sa.Column("byte_count", sa.BigInteger(), nullable=False),
        sa.Column("created", dataferry.db.base.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ingest_transactions")),
    )
    op.create_index(
        op.f("ix_ingest_transactions_job_id"), "ingest_transactions", ["job_id"], unique=False
    )
    op.create_table(
        "ingest_key_values",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("transaction_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["ingest_transactions.id"],
            name=op.f("fk_ingest_key_values_transaction_id_ingest_transactions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ingest_key_values")),
    )
    op.create_index(
        op.f("ix_ingest_key_values_transaction_id"),
        "ingest_key_values",
        ["transaction_id"],
        unique=False,
    )
    op.create_table(
        "ingest_files",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("transaction_id", sa.Integer(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("subdir", sa.Text(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("hashtype", sa.String(length=16), nullable=False),
        sa.Column("hashsum", sa.String(length=160), nullable=False),
        sa.Column("mimetype", sa.String(length=255), nullable=False),
        sa.Column("ctime", sa.String(length=64), nullable=False),
        sa.Column("mtime", sa.String(length=64), nullable=False),
        sa.Column("archive_path", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["ingest_transactions.id"],
            name=op.f("fk_ingest_files_transaction_id_ingest_transactions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ingest_files")),
    )
    op.create_index(
        op.f("ix_ingest_files_transaction_id"), "ingest_files", ["transaction_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_ingest_files_transaction_id"), table_name="ingest_files")
    op.drop_table("ingest_files")
    op.drop_index(op.f("ix_ingest_key_values_transaction_id"), table_name="ingest_key_values")
    op.drop_table("ingest_key_values")
    op.drop_index(op.f("ix_ingest_transactions_job_id"), table_name="ingest_transactions")
    op.drop_table("ingest_transactions")
