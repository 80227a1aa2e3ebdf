"""The job value object and its public document (the contract of ARCHITECTURE.md)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dataferry.db.models import JobRow
from dataferry.jobs.states import JobState


def parse_job_id(value: Any) -> int | None:
    """A job id as RPC callers send it (an int, a string of digits, a whole float),
    or None for anything else: a bool, a fraction, infinity, NaN, text."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None  # False for inf and NaN
    if isinstance(value, str) and value.strip().isdecimal():
        return int(value.strip())
    return None


@dataclass(frozen=True, slots=True)
class Job:
    id: int
    kind: str
    queue: str
    state: JobState
    params: dict[str, Any]
    result: dict[str, Any]
    task: str
    task_percent: float
    bytes_done: int
    bytes_total: int | None
    files_done: int
    files_total: int | None
    attempts: int
    max_attempts: int
    error: str
    next_run_at: datetime | None
    lease_owner: str | None
    lease_expires_at: datetime | None
    worker: str
    created: datetime
    updated: datetime

    @classmethod
    def from_row(cls, row: JobRow) -> Job:
        return cls(
            id=row.id,
            kind=row.kind,
            queue=row.queue,
            state=JobState(row.state),
            params=dict(row.params or {}),
            result=dict(row.result or {}),
            task=row.task,
            task_percent=row.task_percent,
            bytes_done=row.bytes_done,
            bytes_total=row.bytes_total,
            files_done=row.files_done,
            files_total=row.files_total,
            attempts=row.attempts,
            max_attempts=row.max_attempts,
            error=row.error,
            next_run_at=row.next_run_at,
            lease_owner=row.lease_owner,
            lease_expires_at=row.lease_expires_at,
            worker=row.worker,
            created=row.created,
            updated=row.updated,
        )

    def document(self) -> dict[str, Any]:
        """The job document every front door returns."""
        return {
            "job_id": self.id,
            "kind": self.kind,
            "state": self.state.value,
            "task": self.task,
            "task_percent": round(self.task_percent, 2),
            "bytes_done": self.bytes_done,
            "bytes_total": self.bytes_total,
            "files_done": self.files_done,
            "files_total": self.files_total,
            "attempts": self.attempts,
            "worker": self.worker,
            "created": self.created.isoformat(),
            "updated": self.updated.isoformat(),
            "error": self.error,
        }

    def detail(self) -> dict[str, Any]:
        """The document plus what an operator wants on a job page."""
        doc = self.document()
        doc.update(
            params=self.params,
            result=self.result,
            queue=self.queue,
            max_attempts=self.max_attempts,
            worker=self.worker,
            next_run_at=self.next_run_at.isoformat() if self.next_run_at else None,
        )
        return doc
