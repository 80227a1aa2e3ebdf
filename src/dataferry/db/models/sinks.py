"""Sinks and their outbox: one row per (sink, record) holding the latest change to deliver."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from dataferry.db.base import Base, UTCDateTime, utcnow


class SinkRow(Base):
    __tablename__ = "sinks"
    __table_args__ = (Index("ix_sinks_last_sync_claim", "last_sync_claim", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    # The SinkSpec without its secrets (api key, table URL): see sinks.store.
    spec: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Fernet token of {"api_key": ..., "table_url": ...}; never leaves the service in clear.
    secrets: Mapped[str] = mapped_column(Text, default="")
    # A digest of the last_sync column a table sink sets (sinks.sharing.claim), kept
    # unique by the database: two sinks stored at once cannot both pass the check.
    # Null: no table source, or stored before claims existed (then the check covers it).
    last_sync_claim: Mapped[str | None] = mapped_column(String(64), nullable=True)
    url: Mapped[str] = mapped_column(Text, default="")
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    origin: Mapped[str] = mapped_column(String(16), default="api")  # api | config
    # Position in a collection's change feed (collection sources).
    cursor: Mapped[int] = mapped_column(BigInteger, default=0)
    poll_owner: Mapped[str | None] = mapped_column(String(255), nullable=True)
    poll_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_poll: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str] = mapped_column(Text, default="")
    last_delivered: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    delivered_total: Mapped[int] = mapped_column(BigInteger, default=0)
    failed_total: Mapped[int] = mapped_column(BigInteger, default=0)
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SinkOutboxRow(Base):
    """The latest known change of one record for one sink (coalesced), and its delivery
    state: ``pending`` (to send), ``delivered`` or ``dead`` (gave up; a dead letter)."""

    __tablename__ = "sink_outbox"
    __table_args__ = (
        UniqueConstraint("sink_id", "key"),
        Index("ix_sink_outbox_sink_id_state_next_attempt", "sink_id", "state", "next_attempt"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sink_id: Mapped[int] = mapped_column(ForeignKey("sinks.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(16), default="pending")
    status: Mapped[str] = mapped_column(String(16))  # new | modified | deleted
    version: Mapped[str] = mapped_column(String(128))
    # Record data, the change's time (ISO) and the raw value to write back to last_sync.
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    changed: Mapped[str] = mapped_column(String(64), default="")
    mark: Mapped[Any] = mapped_column(JSON, nullable=True)
    delivered_version: Mapped[str | None] = mapped_column(String(128), nullable=True)
    # A request for this record was made at least once (the partner may have it even
    # if no answer came back): its deletion must then be sent, not dropped.
    sent: Mapped[bool] = mapped_column(Boolean, default=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    lease_owner: Mapped[str | None] = mapped_column(String(255), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
