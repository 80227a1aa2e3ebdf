"""Sinks: each sink's state and backlog, its dead letters, and re-queue / pause /
resume buttons. Reads and acts through the sinks service, as REST and the CLI do."""

from __future__ import annotations

from urllib.parse import quote, urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from dataferry.api.web.guard import acting, core_of, redirect, render, viewer
from dataferry.errors import DataferryError

router = APIRouter(include_in_schema=False)

DEAD_SHOWN = 100  # dead letters listed on a sink's page; the page pages on


@router.get("/sinks")
def sinks_page(request: Request, notice: str = "") -> Response:
    viewer(request)
    return render(request, "sinks.html", sinks=core_of(request).sinks.list(), notice=notice)


@router.get("/sinks/{name}")
def sink_page(request: Request, name: str, offset: int = 0, notice: str = "") -> Response:
    viewer(request)
    sinks = core_of(request).sinks
    offset = max(0, offset)
    try:
        sink = sinks.get(name)
        dead = sinks.failures(name, limit=DEAD_SHOWN + 1, offset=offset)
    except DataferryError as exc:
        return render(request, "error.html", status_code=exc.status_code, message=exc.message)
    return render(
        request,
        "sink.html",
        sink=sink,
        dead=dead[:DEAD_SHOWN],
        more=len(dead) > DEAD_SHOWN,
        offset=offset,
        page_size=DEAD_SHOWN,
        notice=notice,
    )


def _back(request: Request, name: str, notice: str) -> Response:
    return redirect(request, f"/sinks/{quote(name, safe='')}?" + urlencode({"notice": notice}))


@router.post("/sinks/{name}/retry")
def requeue(request: Request, name: str, csrf: str = Form(""), key: str = Form("")) -> Response:
    """Re-queue one dead letter (``key``) or all of them."""
    acting(request, csrf)
    try:
        n = core_of(request).sinks.retry(name, [key] if key else None)
    except DataferryError as exc:
        return redirect(request, "/sinks?" + urlencode({"notice": exc.message}))
    return _back(request, name, f"{n} dead letter{'s' if n != 1 else ''} re-queued")


@router.post("/sinks/{name}/{action}")
def pause_or_resume(request: Request, name: str, action: str, csrf: str = Form("")) -> Response:
    """``pause`` stops delivering; ``resume`` delivers again."""
    acting(request, csrf)
    sinks = core_of(request).sinks
    steps = {"pause": sinks.pause, "resume": sinks.resume}
    if action not in steps:
        return render(request, "error.html", status_code=404, message=f"no action {action!r}")
    try:
        steps[action](name)
    except DataferryError as exc:
        return redirect(request, "/sinks?" + urlencode({"notice": exc.message}))
    return _back(request, name, "paused" if action == "pause" else "resumed")
