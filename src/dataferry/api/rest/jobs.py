"""``/api/v1/jobs``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict

from dataferry.api.deps import core as get_core
from dataferry.app import Core

router = APIRouter(tags=["jobs"])


@router.get("/jobs")
def list_jobs(
    state: str | None = None,
    kind: str | None = None,
    limit: int = Query(50),
    offset: int = Query(0),
    before: int | None = Query(None, description="only jobs with a smaller id (next page)"),
    after: int | None = Query(None, description="only jobs with a larger id (previous page)"),
    core: Core = Depends(get_core),
) -> dict[str, Any]:
    jobs, total = core.jobs.page(
        state=state, kind=kind, limit=limit, offset=offset, before=before, after=after
    )
    return {"jobs": [j.document() for j in jobs], "total": total, "limit": limit, "offset": offset}


@router.get("/jobs/{job_id}")
async def get_job(
    job_id: int,
    wait: float = Query(
        0,
        description="answer as soon as the job is finished (succeeded, failed or "
        "cancelled), or after this many seconds (at most 60)",
    ),
    core: Core = Depends(get_core),
) -> dict[str, Any]:
    return (await core.jobs.wait(job_id, wait)).document()


@router.get("/jobs/{job_id}/detail")
def job_detail(job_id: int, core: Core = Depends(get_core)) -> dict[str, Any]:
    doc = core.jobs.get(job_id).detail()
    doc["attempt_history"] = core.jobs.attempts(job_id)
    return doc


@router.get("/jobs/{job_id}/files")
def job_files(
    job_id: int,
    limit: int = Query(1000, ge=1, le=10000),
    offset: int = Query(0, ge=0),
    core: Core = Depends(get_core),
) -> dict[str, Any]:
    return {"job_id": job_id, "files": core.jobs.files(job_id, limit=limit, offset=offset)}


@router.post("/jobs/{job_id}/cancel")
def cancel_job(job_id: int, core: Core = Depends(get_core)) -> dict[str, Any]:
    return core.jobs.cancel(job_id).document()


@router.post("/jobs/{job_id}/retry")
def retry_job(job_id: int, core: Core = Depends(get_core)) -> dict[str, Any]:
    return core.jobs.retry(job_id).document()


class PruneIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Any: the service says what a good value is, the same words for every door.
    older_than_days: Any


@router.post("/jobs/prune")
def prune_jobs(body: PruneIn, core: Core = Depends(get_core)) -> dict[str, Any]:
    """Delete finished transfer, move, ala and records-sync jobs older than N days."""
    return {"deleted": core.jobs.prune(body.older_than_days)}
