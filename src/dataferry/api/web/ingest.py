"""Ingest (when the ingest capability is installed): upload a bundle by drag and drop
(or the file input) with an upload progress bar, then follow the ingest job's tasks;
recent ingest jobs below."""

from __future__ import annotations

import importlib
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import Response

from dataferry.api.web.guard import acting, core_of, render, viewer
from dataferry.api.web.jobs import row

router = APIRouter(include_in_schema=False)


@router.get("/ingest")
def ingest_page(request: Request) -> Response:
    viewer(request)
    tasks = importlib.import_module("dataferry.ingest.tasks")
    core = core_of(request)
    jobs, total = core.jobs.page(kind=tasks.KIND, limit=20)
    now = datetime.now(UTC)
    return render(
        request,
        "ingest.html",
        tasks=list(tasks.UPLOAD_TASKS),
        rows=[row(j.document(), now) for j in jobs],
        total=total,
    )


@router.post("/ingest/upload")
async def upload(request: Request) -> Response:
    """The page's upload: the Pacifica ``/upload`` door behind the dashboard session
    (the script sends the CSRF token as a header; the body is the tar bundle)."""
    acting(request, "")
    pacifica = importlib.import_module("dataferry.api.compat.pacifica")
    response: Response = await pacifica.upload(request)
    return response
