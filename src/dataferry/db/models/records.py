"""Records, their collections, the change clock, checkpoints, conflicts and peers."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from dataferry.db.base import Base, UTCDateTime, utcnow


class CollectionRow(Base):
    __tablename__ = "record_collections"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    # JSON Schema as JSON text; empty: no schema.
    schema: Mapped[str] = mapped_column(Text, default="")
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RecordRow(Base):
    """The current state of one record. ``seq`` is the instance's change sequence
    number of the record's last change here: the change feed is this table read
    in ``seq`` order (one row per record, so the feed is compacted)."""

    __tablename__ = "records"
    __table_args__ = (
        Index("ix_records_collection_seq", "collection", "seq"),
        Index("ix_records_collection_hlc", "collection", "hlc"),
    )

    collection: Mapped[str] = mapped_column(String(128), primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), primary_key=True)
    origin: Mapped[str] = mapped_column(String(64))  # instance that created it
    hlc: Mapped[int] = mapped_column(BigInteger)  # stamp of its last change
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    data: Mapped[str] = mapped_column(Text)  # the document (JSON)
    meta: Mapped[str] = mapped_column(Text)  # per-field stamps (JSON), see records.merge
    seq: Mapped[int] = mapped_column(BigInteger, unique=True)
    # The instance this state was received from unchanged ("" if made or merged here):
    # the feed does not echo a state back to where it came from.
    via: Mapped[str] = mapped_column(String(64), default="")
    updated: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ClockRow(Base):
    """One row: the last change sequence number and hybrid logical clock value.
    Writers lock it, so sequence numbers commit in order."""

    __tablename__ = "record_clock"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    hlc: Mapped[int] = mapped_column(BigInteger, default=0)


class CheckpointRow(Base):
    """What this instance has received of ``source``'s change feed for ``collection``:
    every change up to ``cursor``. Written in the transaction that applies them."""

    __tablename__ = "record_checkpoints"

    collection: Mapped[str] = mapped_column(String(128), primary_key=True)
    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    epoch: Mapped[str] = mapped_column(String(64), default="")
    cursor: Mapped[int] = mapped_column(BigInteger, default=0)
    updated: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AckRow(Base):
    """Reserved (unused since echo stubs replaced acknowledgement tracking; kept so
    the 0003 migration and the models agree)."""

    __tablename__ = "record_acks"

    collection: Mapped[str] = mapped_column(String(128), primary_key=True)
    requester: Mapped[str] = mapped_column(String(64), primary_key=True)
    acked: Mapped[int] = mapped_column(BigInteger, default=0)
    rewind_until: Mapped[int] = mapped_column(BigInteger, default=0)


class ConflictRow(Base):
    __tablename__ = "record_conflicts"
    __table_args__ = (Index("ix_record_conflicts_collection_id", "collection", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    collection: Mapped[str] = mapped_column(String(128))
    uuid: Mapped[str] = mapped_column(String(36))
    kind: Mapped[str] = mapped_column(String(16))
    field: Mapped[str] = mapped_column(Text)
    lost: Mapped[str] = mapped_column(Text)  # JSON
    lost_hlc: Mapped[int] = mapped_column(BigInteger)
    lost_origin: Mapped[str] = mapped_column(String(64))
    won: Mapped[str] = mapped_column(Text)  # JSON
    won_hlc: Mapped[int] = mapped_column(BigInteger)
    won_origin: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(64))  # where the merge's other side came from
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PeerRow(Base):
    __tablename__ = "peers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    url: Mapped[str] = mapped_column(Text)
    token: Mapped[str] = mapped_column(Text, default="")  # Fernet-sealed
    instance_id: Mapped[str] = mapped_column(String(64), default="")
    epoch: Mapped[str] = mapped_column(String(64), default="")
    owner: Mapped[str] = mapped_column(Text, default="")
    contact: Mapped[str] = mapped_column(Text, default="")
    collections: Mapped[str] = mapped_column(Text, default="")  # comma-separated; "": all
    interval_seconds: Mapped[int] = mapped_column(Integer, default=300)
    last_sync: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_attempt: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    sync_count: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
