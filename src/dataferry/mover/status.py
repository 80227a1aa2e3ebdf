"""The one place where a job's state becomes a data mover status (pure)."""

from __future__ import annotations

from typing import Any

from dataferry.jobs.model import Job
from dataferry.jobs.states import JobState

PENDING = "PENDING"
IN_PROGRESS = "IN_PROGRESS"
DOWNLOADING = "DOWNLOADING"
COMPLETED = "COMPLETED"
FAILED = "FAILED"
REJECTED = "REJECTED"


def rejected(reason: str) -> dict[str, Any]:
    return {"status": REJECTED, "reason": reason}


def mover_status(job: Job, active: str = IN_PROGRESS) -> dict[str, Any]:
    """``{"id", "status"[, "reason"]}`` for a job; ``active`` names the running state
    (``IN_PROGRESS`` for moves, ``DOWNLOADING`` for ALA pulls)."""
    state = job.state
    if state is JobState.QUEUED or state is JobState.RETRYING:
        out: dict[str, Any] = {"id": job.id, "status": PENDING}
    elif state is JobState.RUNNING:
        out = {"id": job.id, "status": active}
    elif state is JobState.SUCCEEDED:
        out = {"id": job.id, "status": COMPLETED}
    else:
        reason = job.error or ("cancelled" if state is JobState.CANCELLED else "failed")
        out = {"id": job.id, "status": FAILED, "reason": reason}
    return out
