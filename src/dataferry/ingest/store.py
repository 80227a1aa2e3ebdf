"""All SQL about ingested transactions: record one in a single commit, read them back."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from dataferry.db.engine import Database
from dataferry.db.models import IngestFileRow, IngestKeyValueRow, IngestTransactionRow
from dataferry.errors import NotFound
from dataferry.ingest.metadata import BundleMetadata


@dataclass(frozen=True, slots=True)
class ArchivedFile:
    id: int
    transaction_id: int
    path: str
    size: int
    mimetype: str
    archive_path: str
    archive_endpoint: str


class TransactionStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def exists(self, transaction_id: int) -> bool:
        with self.db.read() as s:
            return s.get(IngestTransactionRow, transaction_id) is not None

    def record(
        self,
        transaction_id: int,
        job_id: int,
        meta: BundleMetadata,
        *,
        origin: str,
        archive_endpoint: str,
        archive_folder: str,
        archive_paths: dict[str, str],
    ) -> None:
        """The transaction, its key-values and files, in one commit."""
        with self.db.session() as s:
            s.add(
                IngestTransactionRow(
                    id=transaction_id,
                    job_id=job_id,
                    submitter=meta.submitter,
                    project=meta.project,
                    instrument=meta.instrument,
                    origin=origin,
                    archive_endpoint=archive_endpoint,
                    archive_path=archive_folder,
                    file_count=len(meta.files),
                    byte_count=meta.total_bytes,
                )
            )
            s.flush()
            s.add_all(
                IngestKeyValueRow(transaction_id=transaction_id, key=k, value=v)
                for k, v in meta.key_values
            )
            s.add_all(
                IngestFileRow(
                    transaction_id=transaction_id,
                    path=f.path,
                    name=f.name,
                    subdir=f.subdir,
                    size=f.size,
                    hashtype=f.hashtype,
                    hashsum=f.hashsum,
                    mimetype=f.mimetype,
                    ctime=f.ctime,
                    mtime=f.mtime,
                    archive_path=archive_paths[f.path],
                )
                for f in meta.files
            )

    def document(self, transaction_id: int) -> dict[str, Any]:
        with self.db.read() as s:
            tx = s.get(IngestTransactionRow, transaction_id)
            if tx is None:
                raise NotFound(f"transaction {transaction_id} does not exist")
            kvs = s.scalars(
                select(IngestKeyValueRow)
                .where(IngestKeyValueRow.transaction_id == transaction_id)
                .order_by(IngestKeyValueRow.id)
            ).all()
            files = s.scalars(
                select(IngestFileRow)
                .where(IngestFileRow.transaction_id == transaction_id)
                .order_by(IngestFileRow.id)
            ).all()
            return {
                "transaction_id": tx.id,
                "job_id": tx.job_id,
                "submitter": tx.submitter,
                "project": tx.project,
                "instrument": tx.instrument,
                "origin": tx.origin,
                "archive_endpoint": tx.archive_endpoint,
                "archive_path": tx.archive_path,
                "file_count": tx.file_count,
                "byte_count": tx.byte_count,
                "created": tx.created.isoformat(),
                "key_values": [{"key": kv.key, "value": kv.value} for kv in kvs],
                "files": [
                    {
                        "file_id": f.id,
                        "path": f.path,
                        "name": f.name,
                        "subdir": f.subdir,
                        "size": f.size,
                        "hashtype": f.hashtype,
                        "hashsum": f.hashsum,
                        "mimetype": f.mimetype,
                        "ctime": f.ctime,
                        "mtime": f.mtime,
                        "archive_path": f.archive_path,
                        "download": f"/api/v1/transactions/{tx.id}/files/{f.id}/content",
                    }
                    for f in files
                ],
            }

    def page(self, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
        with self.db.read() as s:
            rows = s.scalars(
                select(IngestTransactionRow)
                .order_by(IngestTransactionRow.id.desc())
                .limit(limit)
                .offset(offset)
            ).all()
            total = s.scalar(select(func.count()).select_from(IngestTransactionRow)) or 0
            return [
                {
                    "transaction_id": r.id,
                    "job_id": r.job_id,
                    "submitter": r.submitter,
                    "project": r.project,
                    "instrument": r.instrument,
                    "origin": r.origin,
                    "file_count": r.file_count,
                    "byte_count": r.byte_count,
                    "created": r.created.isoformat(),
                }
                for r in rows
            ], total

    def file(self, transaction_id: int, file_id: int) -> ArchivedFile:
        with self.db.read() as s:
            row = s.get(IngestFileRow, file_id)
            if row is None or row.transaction_id != transaction_id:
                raise NotFound(f"file {file_id} of transaction {transaction_id} does not exist")
            tx = s.get(IngestTransactionRow, transaction_id)
            assert tx is not None
            return ArchivedFile(
                id=row.id,
                transaction_id=transaction_id,
                path=row.path,
                size=row.size,
                mimetype=row.mimetype,
                archive_path=row.archive_path,
                archive_endpoint=tx.archive_endpoint,
            )

    def counts(self) -> tuple[int, int, int]:
        """(transactions, key-values, files) — what a failed ingest must leave unchanged."""
        with self.db.read() as s:
            return (
                s.scalar(select(func.count()).select_from(IngestTransactionRow)) or 0,
                s.scalar(select(func.count()).select_from(IngestKeyValueRow)) or 0,
                s.scalar(select(func.count()).select_from(IngestFileRow)) or 0,
            )
