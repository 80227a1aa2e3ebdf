"""schedules: transfers submitted again every so often

Revision ID: 0010_schedules
Revises: 0001
Create Date: 2026-12-08 02:50:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import dataferry.db.base

revision: str = "0010_schedules"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = dataferry.db.base.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "schedules",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("transfer", sa.JSON(), nullable=False),
        sa.Column("every", sa.Float(), nullable=False),
        sa.Column("start", UTC(), nullable=False),
        sa.Column("next_run", UTC(), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.Column("last_run", UTC(), nullable=True),
        sa.Column("last_job_id", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("created", UTC(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_index("ix_schedules_next_run", "schedules", ["next_run"])


def downgrade() -> None:
    op.drop_index("ix_schedules_next_run", table_name="schedules")
    op.drop_table("schedules")
