"""Jobs: the live table and one job's page, with cancel and retry."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from dataferry.api.web import format as fmt
from dataferry.api.web.guard import acting, core_of, redirect, render, viewer
from dataferry.errors import DataferryError
from dataferry.jobs.states import JobState
from dataferry.transfers.store import REFERENCE, UNKNOWN_MTIME

# What a transfer's limits record in its params and result (transfers/run.py)
_LIMIT_KEYS = (REFERENCE, UNKNOWN_MTIME, "reference_time")

router = APIRouter(include_in_schema=False)

PAGE_SIZES = (20, 50, 100, 200)
FILES_PAGE = 500


def _int(value: str | None) -> int | None:
    if value is None or value.strip() == "":
        return None
    try:
        return int(value.strip().lstrip("#"))
    except ValueError:
        return None


def row(doc: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {**doc, "progress": fmt.progress(doc, now), "age": fmt.age(doc["created"], now)}


def _limit_notes(doc: dict[str, Any]) -> list[str]:
    """Sentences for what a size or age limit recorded in a transfer's params (while
    it runs) and result (once done), taken out of those lists: a count of nanoseconds
    since 1970 says nothing to a reader. Worded as the new-transfer preview words them."""
    params = {k: v for k, v in (doc.get("params") or {}).items() if k not in _LIMIT_KEYS}
    result = {k: v for k, v in (doc.get("result") or {}).items() if k not in _LIMIT_KEYS}
    recorded = {**(doc.get("params") or {}), **(doc.get("result") or {})}
    doc["params"], doc["result"] = params, result
    notes = []
    unknown = recorded.get(UNKNOWN_MTIME)
    if isinstance(unknown, int) and unknown:
        notes.append(f"{unknown} files left out: their time is unknown.")
    # the exact pinned moment while the job runs; the result's text once it is done
    moment = recorded.get(REFERENCE, recorded.get("reference_time"))
    if isinstance(moment, int | str):
        with contextlib.suppress(ValueError):
            notes.append(f"Ages measured from {fmt.utc_moment(moment)}.")
    return notes


@router.get("/")
@router.get("/jobs")
def jobs_page(
    request: Request,
    state: str = "",
    kind: str = "",
    q: str = "",
    before: str = "",
    after: str = "",
    limit: str = "50",
    notice: str = "",
) -> Response:
    viewer(request)
    core = core_of(request)
    error = ""
    if q.strip():
        wanted = _int(q)
        if wanted is not None and wanted > 0:
            try:
                core.jobs.get(wanted)
                return redirect(request, f"/jobs/{wanted}")
            except DataferryError as exc:
                error = exc.message
        else:
            error = f"search by job id: {q!r} is not a job number"
    size = _int(limit) or 50
    size = size if size in PAGE_SIZES else 50
    cursor_before, cursor_after = _int(before), _int(after)
    filters = (state or None, kind or None)
    try:
        # one row more than shown tells whether there is a next page in that direction
        jobs, total = core.jobs.page(
            *filters, limit=size + 1, before=cursor_before, after=cursor_after
        )
        if cursor_after is not None and len(jobs) <= size:
            # reading upwards reached the newest jobs: show the newest full page
            cursor_after = None
            jobs, total = core.jobs.page(*filters, limit=size + 1)
    except DataferryError as exc:
        error = exc.message
        jobs, total = [], 0
    if cursor_after is not None:
        more_newer, more_older = True, cursor_after > 0
        jobs = jobs[1:]  # upwards: the extra row is the newest one
    else:
        more_newer, more_older = cursor_before is not None, len(jobs) > size
        jobs = jobs[:size]
    now = datetime.now(UTC)
    rows = [row(j.document(), now) for j in jobs]
    keep = {k: v for k, v in {"state": state, "kind": kind, "limit": str(size)}.items() if v}

    def link(**cursor: int) -> str:
        return "/?" + urlencode({**keep, **cursor})

    newest_id = rows[0]["job_id"] if rows else None
    oldest_id = rows[-1]["job_id"] if rows else None
    first_page = not more_newer
    api = dict(keep)
    if not first_page and newest_id is not None:
        api["before"] = str(newest_id + 1)  # live updates of this window, not the newest
    return render(
        request,
        "jobs.html",
        rows=rows,
        total=total,
        counts=core.jobs.counts(),
        states=[s.value for s in JobState],
        kinds=core.registry.names(),
        state=state,
        kind=kind,
        q=q,
        limit=size,
        page_sizes=PAGE_SIZES,
        error=error,
        first_page=first_page,
        newer=link(after=newest_id) if newest_id is not None and more_newer else "",
        older=link(before=oldest_id) if oldest_id is not None and more_older else "",
        oldest=link(after=0) if more_older else "",
        live_url="/api/v1/jobs?" + urlencode({**api, "limit": str(size)}),
        notice=notice,
        keep_days=core.settings.jobs.keep_finished_days,
    )


@router.get("/jobs/{job_id}")
def job_page(request: Request, job_id: int, files_offset: int = 0, notice: str = "") -> Response:
    viewer(request)
    core = core_of(request)
    try:
        job = core.jobs.get(job_id)
    except DataferryError as exc:
        return render(request, "error.html", status_code=exc.status_code, message=exc.message)
    now = datetime.now(UTC)
    doc = row(job.detail(), now)
    notes = _limit_notes(doc)
    offset = max(0, files_offset)
    files = core.jobs.files(job_id, limit=FILES_PAGE + 1, offset=offset)
    return render(
        request,
        "job.html",
        job=doc,
        limit_notes=notes,
        final=job.state.final,
        can_cancel=job.state in (JobState.QUEUED, JobState.RUNNING, JobState.RETRYING),
        can_retry=job.state in (JobState.FAILED, JobState.CANCELLED),
        attempts=core.jobs.attempts(job_id),
        files=files[:FILES_PAGE],
        files_offset=offset,
        files_more=len(files) > FILES_PAGE,
        files_page=FILES_PAGE,
        notice=notice,
    )


def _act(request: Request, job_id: int, csrf: str, what: str) -> Response:
    acting(request, csrf)
    core = core_of(request)
    try:
        if what == "cancel":
            core.jobs.cancel(job_id)
            notice = "cancel requested"
        else:
            core.jobs.retry(job_id)
            notice = "queued again"
    except DataferryError as exc:
        notice = exc.message
    return redirect(request, f"/jobs/{job_id}?" + urlencode({"notice": notice}))


@router.post("/jobs/{job_id}/cancel")
def cancel(request: Request, job_id: int, csrf: str = Form("")) -> Response:
    return _act(request, job_id, csrf, "cancel")


@router.post("/jobs/{job_id}/retry")
def retry(request: Request, job_id: int, csrf: str = Form("")) -> Response:
    return _act(request, job_id, csrf, "retry")


@router.post("/jobs/prune")
def prune(request: Request, older_than_days: str = Form(""), csrf: str = Form("")) -> Response:
    """Delete old finished jobs, as ``dataferry prune-jobs`` does (the service checks
    the number: a word or a blank reaches it as text and gets its message)."""
    acting(request, csrf)
    days: Any = older_than_days.strip()
    with contextlib.suppress(ValueError):
        days = float(days)
    try:
        deleted = core_of(request).jobs.prune(days)
        notice = f"deleted {deleted} finished job{'' if deleted == 1 else 's'}"
    except DataferryError as exc:
        notice = exc.message
    return redirect(request, "/?" + urlencode({"notice": notice}))
