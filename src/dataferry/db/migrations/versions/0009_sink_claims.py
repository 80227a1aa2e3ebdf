"""sinks: a unique claim of the last_sync column a table sink sets

Revision ID: 0009_sink_claims
Revises: 0008_sinks
Create Date: 2026-12-07 19:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_sink_claims"
down_revision: str | Sequence[str] | None = "0008_sinks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Null for the sinks stored so far: their table URL is sealed under the secret key,
    # which a migration does not have. The service's check still compares them (they
    # are stored already), and pairs an older version stored on one column stay
    # possible (only the oldest runs); a sink's claim is written when it is changed.
    op.add_column("sinks", sa.Column("last_sync_claim", sa.String(length=64), nullable=True))
    op.create_index("ix_sinks_last_sync_claim", "sinks", ["last_sync_claim"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_sinks_last_sync_claim", table_name="sinks")
    with op.batch_alter_table("sinks", schema=None) as batch_op:
        batch_op.drop_column("last_sync_claim")
