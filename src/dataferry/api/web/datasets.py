"""Datasets: each synced dataset's place in its state machine and its history, with
a restart button; the datasets this instance publishes."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from dataferry.api.web.guard import acting, core_of, redirect, render, viewer
from dataferry.errors import DataferryError

router = APIRouter(include_in_schema=False)

# The consumer's path through its state machine, in order (failed states are off it).
PATH = ("registered", "transfer_requested", "in_progress", "checking_integrity", "complete")
FAILED = ("failed_retryable", "failed_permanent")
FINISHED = ("complete", "failed_permanent")  # what forget takes (ConsumerService.forget)


def steps(state: str, history: list[dict[str, str]] | None = None) -> list[dict[str, str]]:
    """Each step of the path: done, current or to come (a failed dataset marks the
    step it failed at, the last one it reached)."""
    reached = state
    if state in FAILED and history:
        before = [h["from"] for h in history if h["to"] == state and h["from"] in PATH]
        reached = before[-1] if before else "registered"
    at = PATH.index(reached) if reached in PATH else 0
    out = []
    for i, name in enumerate(PATH):
        status = "done" if i < at else ("current" if i == at else "todo")
        if state in FAILED and i == at:
            status = "failed"
        if state == "complete" and i == at:
            status = "done"
        out.append({"name": name, "status": status})
    return out


@router.get("/datasets")
def datasets_page(request: Request, notice: str = "") -> Response:
    viewer(request)
    core = core_of(request)
    synced = [d.document() for d in core.consumer.list()]
    for d in synced:
        d["steps"] = steps(d["state"], core.consumer.history(d["uid"]))
    return render(
        request,
        "datasets.html",
        synced=synced,
        published=[d.document(with_manifest=False) for d in core.provider.list()],
        sites=[s.document() for s in core.sites.list()],
        failed=FAILED,
        notice=notice,
    )


@router.get("/datasets/synced/{uid}")
def synced_page(request: Request, uid: str, notice: str = "") -> Response:
    viewer(request)
    core = core_of(request)
    try:
        doc = core.consumer.get(uid).document()
        history = core.consumer.history(uid)
    except DataferryError as exc:
        return render(request, "error.html", status_code=exc.status_code, message=exc.message)
    return render(
        request,
        "dataset.html",
        ds=doc,
        steps=steps(doc["state"], history),
        history=history,
        can_restart=doc["state"] in FAILED,
        can_forget=doc["state"] in FINISHED,
        notice=notice,
    )


@router.post("/datasets/synced/{uid}/restart")
def restart(request: Request, uid: str, csrf: str = Form("")) -> Response:
    acting(request, csrf)
    try:
        core_of(request).consumer.restart(uid)
        notice = "restarted"
    except DataferryError as exc:
        notice = exc.message
    return redirect(request, f"/datasets/synced/{uid}?" + urlencode({"notice": notice}))


@router.post("/datasets/synced/{uid}/forget")
def forget(request: Request, uid: str, csrf: str = Form("")) -> Response:
    acting(request, csrf)
    try:
        core_of(request).consumer.forget(uid)
    except DataferryError as exc:
        return redirect(request, f"/datasets/synced/{uid}?" + urlencode({"notice": exc.message}))
    notice = f"dataset {uid} forgotten (its files stay)"
    return redirect(request, "/datasets?" + urlencode({"notice": notice}))
