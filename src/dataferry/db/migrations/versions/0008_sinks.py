"""sinks: sink definitions and their outbox

Revision ID: 0008_sinks
Revises: 0001
Create Date: 2026-11-26 04:15:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import dataferry.db.base

revision: str = "0008_sinks"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = dataferry.db.base.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "sinks",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("secrets", sa.Text(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("origin", sa.String(length=16), nullable=False),
        sa.Column("cursor", sa.BigInteger(), nullable=False),
        sa.Column("poll_owner", sa.String(length=255), nullable=True),
        sa.Column("poll_until", UTC(), nullable=True),
        sa.Column("last_poll", UTC(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("last_delivered", UTC(), nullable=True),
        sa.Column("delivered_total", sa.BigInteger(), nullable=False),
        sa.Column("failed_total", sa.BigInteger(), nullable=False),
        sa.Column("created", UTC(), nullable=False),
        sa.Column("updated", UTC(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sinks")),
        sa.UniqueConstraint("name", name=op.f("uq_sinks_name")),
    )
    op.create_table(
        "sink_outbox",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("sink_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("version", sa.String(length=128), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("changed", sa.String(length=64), nullable=False),
        sa.Column("mark", sa.JSON(), nullable=True),
        sa.Column("delivered_version", sa.String(length=128), nullable=True),
        sa.Column("sent", sa.Boolean(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt", UTC(), nullable=False),
        sa.Column("lease_owner", sa.String(length=255), nullable=True),
        sa.Column("lease_until", UTC(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("created", UTC(), nullable=False),
        sa.Column("updated", UTC(), nullable=False),
        sa.Column("delivered_at", UTC(), nullable=True),
        sa.ForeignKeyConstraint(
            ["sink_id"], ["sinks.id"], name=op.f("fk_sink_outbox_sink_id_sinks"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sink_outbox")),
        sa.UniqueConstraint("sink_id", "key", name=op.f("uq_sink_outbox_sink_id_key")),
    )
    with op.batch_alter_table("sink_outbox", schema=None) as batch_op:
        batch_op.create_index(
            "ix_sink_outbox_sink_id_state_next_attempt",
            ["sink_id", "state", "next_attempt"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("sink_outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_sink_outbox_sink_id_state_next_attempt")
    op.drop_table("sink_outbox")
    op.drop_table("sinks")
