"""job_files.mtime: each planned file's modification time at its source

Revision ID: 0009_job_file_mtime
Revises: 0001
Create Date: 2026-12-07 19:30:00

Nullable: rows planned before this revision (and sources that cannot tell a time)
have none, and their copies get no time set.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_job_file_mtime"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("job_files", schema=None) as batch_op:
        batch_op.add_column(sa.Column("mtime", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("job_files", schema=None) as batch_op:
        batch_op.drop_column("mtime")
