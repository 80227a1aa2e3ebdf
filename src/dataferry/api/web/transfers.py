"""The new-transfer form: endpoint pickers from the registry, mode and checksum; a
dry run shows what the transfer would take and delete without submitting it; with
"Repeat" filled in, the transfer becomes a schedule instead of one job."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from dataferry.api.web.guard import acting, core_of, redirect, render, viewer
from dataferry.durations import parse_duration
from dataferry.errors import DataferryError, InvalidRequest
from dataferry.transfers.limits import parse_size
from dataferry.transfers.request import Checksum, Compare, Mode, Overwrite, TransferRequest

router = APIRouter(include_in_schema=False)


def _form(
    request: Request,
    values: dict[str, str],
    status_code: int = 200,
    error: str = "",
    preview: dict[str, Any] | None = None,
) -> Response:
    core = core_of(request)
    return render(
        request,
        "transfer_new.html",
        status_code=status_code,
        endpoints=[e.name for e in core.endpoints.list()],
        modes=[m.value for m in Mode],
        checksums=[c.value for c in Checksum],
        overwrites=[o.value for o in Overwrite],
        compares=[c.value for c in Compare],
        error=error,
        preview=preview,
        v=values,
    )


def _lines(text: str) -> list[str]:
    """One pattern per line of a text area; blank lines are spacing, not patterns."""
    return [line for line in text.splitlines() if line.strip()]


def _size(field: str, text: str) -> int | None:
    """A size box as the CLI reads it (``10M``); empty: no limit."""
    return parse_size(field, text) if text.strip() else None


def _age(field: str, text: str) -> float | None:
    """An age box as the CLI reads it (``7d``); empty: no limit."""
    return parse_duration(field, text) if text.strip() else None


@router.get("/transfers/new")
def new_transfer(request: Request) -> Response:
    viewer(request)
    # ?source=ENDPOINT:PATH: "Transfer from here" on an endpoint's files page
    source_endpoint, _, source_path = request.query_params.get("source", "").partition(":")
    values = {"mode": "copy", "checksum": "sha256", "overwrite": ""}
    values.update(source_endpoint=source_endpoint, source_path=source_path)
    return _form(request, values)


@router.post("/transfers/new")
def submit_transfer(
    request: Request,
    csrf: str = Form(""),
    source_endpoint: str = Form(""),
    source_path: str = Form(""),
    destination_endpoint: str = Form(""),
    destination_path: str = Form(""),
    mode: str = Form("copy"),
    checksum: str = Form("sha256"),
    overwrite: str = Form(""),
    include: str = Form(""),
    exclude: str = Form(""),
    compare: str = Form(""),
    empty_folders: str = Form(""),
    min_size: str = Form(""),
    max_size: str = Form(""),
    min_age: str = Form(""),
    max_age: str = Form(""),
    schedule_name: str = Form(""),
    every: str = Form(""),
    start: str = Form(""),
    action: str = Form("submit"),
) -> Response:
    acting(request, csrf)
    values = {
        "source_endpoint": source_endpoint,
        "source_path": source_path,
        "destination_endpoint": destination_endpoint,
        "destination_path": destination_path,
        "mode": mode,
        "checksum": checksum,
        "overwrite": overwrite,
        "include": include,
        "exclude": exclude,
        "compare": compare,
        "empty_folders": "1" if empty_folders else "",
        "min_size": min_size,
        "max_size": max_size,
        "min_age": min_age,
        "max_age": max_age,
        "schedule_name": schedule_name,
        "every": every,
        "start": start,
    }
    if not source_endpoint or not destination_endpoint:
        return _form(request, values, 422, "choose a source and a destination endpoint")
    try:
        req = TransferRequest.build(
            f"{source_endpoint}:{source_path.strip()}",
            f"{destination_endpoint}:{destination_path.strip()}",
            mode,
            checksum,
            overwrite or None,
            include=_lines(include),
            exclude=_lines(exclude),
            compare=compare or None,
            empty_folders=bool(empty_folders),
            min_size=_size("min_size", min_size),
            max_size=_size("max_size", max_size),
            min_age=_age("min_age", min_age),
            max_age=_age("max_age", max_age),
        )
        if action == "preview":
            preview = core_of(request).transfers.preview(req)
            return _form(request, values, preview=preview)
        if action == "schedule":
            if not every.strip():
                raise InvalidRequest("give how often to repeat the transfer (Every: e.g. 1d)")
            schedule = core_of(request).schedules.add(
                schedule_name.strip(),
                req,
                parse_duration("every", every),
                start.strip() or None,
            )
            first = f"{schedule.next_run:%Y-%m-%d %H:%M:%S} UTC"
            notice = f"schedule {schedule.name} added: first run at {first}"
            return redirect(request, "/schedules?" + urlencode({"notice": notice}))
        if every.strip() or schedule_name.strip():
            raise InvalidRequest(
                "the Repeat fields are filled in: press Add schedule to repeat this "
                "transfer, or empty them to run it once"
            )
        job = core_of(request).transfers.submit(req)
    except DataferryError as exc:
        return _form(request, values, exc.status_code, exc.message)
    return redirect(request, f"/jobs/{job.id}")
