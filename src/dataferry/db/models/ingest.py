"""Ingested transactions: the bundle's metadata, its key-values and archived files."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from dataferry.db.base import Base, UTCDateTime, utcnow


class IngestTransactionRow(Base):
    __tablename__ = "ingest_transactions"

    # The id of the ingest job that created it: known before anything is archived,
    # so the archive folder can carry it, and stable when a job resumes.
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    job_id: Mapped[int] = mapped_column(Integer, index=True)
    submitter: Mapped[str | None] = mapped_column(String(255), nullable=True)
    project: Mapped[str | None] = mapped_column(String(255), nullable=True)
    instrument: Mapped[str | None] = mapped_column(String(255), nullable=True)
    origin: Mapped[str] = mapped_column(String(16), default="upload")
    archive_endpoint: Mapped[str] = mapped_column(String(128), default="")
    archive_path: Mapped[str] = mapped_column(Text, default="")
    file_count: Mapped[int] = mapped_column(Integer, default=0)
    byte_count: Mapped[int] = mapped_column(BigInteger, default=0)
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class IngestKeyValueRow(Base):
    __tablename__ = "ingest_key_values"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    transaction_id: Mapped[int] = mapped_column(
        ForeignKey("ingest_transactions.id", ondelete="CASCADE"), index=True
    )
    key: Mapped[str] = mapped_column(String(255))
    value: Mapped[str] = mapped_column(Text)


class IngestFileRow(Base):
    __tablename__ = "ingest_files"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    transaction_id: Mapped[int] = mapped_column(
        ForeignKey("ingest_transactions.id", ondelete="CASCADE"), index=True
    )
    path: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text)
    subdir: Mapped[str] = mapped_column(Text, default="")
    size: Mapped[int] = mapped_column(BigInteger)
    hashtype: Mapped[str] = mapped_column(String(16))
    hashsum: Mapped[str] = mapped_column(String(160))
    mimetype: Mapped[str] = mapped_column(String(255), default="application/octet-stream")
    ctime: Mapped[str] = mapped_column(String(64), default="")
    mtime: Mapped[str] = mapped_column(String(64), default="")
    archive_path: Mapped[str] = mapped_column(Text)
