"""Schedules: each one's transfer, next run and last job, with run-now, pause,
resume and remove buttons. New schedules come from the new-transfer form."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from dataferry.api.web.guard import acting, core_of, redirect, render, viewer
from dataferry.errors import DataferryError

router = APIRouter(include_in_schema=False)


@router.get("/schedules")
def schedules_page(request: Request, notice: str = "") -> Response:
    viewer(request)
    schedules = [s.document() for s in core_of(request).schedules.list()]
    return render(request, "schedules.html", schedules=schedules, notice=notice)


@router.post("/schedules/{name}/{action}")
def act(request: Request, name: str, action: str, csrf: str = Form("")) -> Response:
    """``run`` (a run now), ``pause``, ``resume`` or ``remove``."""
    acting(request, csrf)
    schedules = core_of(request).schedules
    try:
        if action == "run":
            notice = f"schedule {name}: job {schedules.run_now(name).id} queued"
        elif action == "pause":
            schedules.pause(name)
            notice = f"schedule {name} paused"
        elif action == "resume":
            schedules.resume(name)
            notice = f"schedule {name} resumed"
        elif action == "remove":
            schedules.remove(name)
            notice = f"schedule {name} removed"
        else:
            return render(request, "error.html", status_code=404, message=f"no action {action!r}")
    except DataferryError as exc:
        notice = exc.message
    return redirect(request, "/schedules?" + urlencode({"notice": notice}))
