"""Replication: collections with record counts, peers with their last sync, conflicts
to review, and "sync now"."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from dataferry.api.web.guard import acting, core_of, redirect, render, viewer
from dataferry.errors import DataferryError

router = APIRouter(include_in_schema=False)

CONFLICTS_SHOWN = 20  # per collection on the overview; the collection's page pages on


@router.get("/replication")
def replication_page(request: Request, notice: str = "") -> Response:
    viewer(request)
    core = core_of(request)
    collections = [c.document() for c in core.records.collections()]
    conflicts: list[dict[str, Any]] = []
    for c in collections:
        conflicts.extend(core.records.conflicts(c["name"], limit=CONFLICTS_SHOWN))
    conflicts.sort(key=lambda x: x["at"], reverse=True)
    return render(
        request,
        "replication.html",
        instance_id=core.records.instance_id,
        collections=collections,
        peers=[p.document() for p in core.peers.list()],
        conflicts=conflicts[:CONFLICTS_SHOWN],
        notice=notice,
    )


@router.get("/replication/collections/{name}/conflicts")
def conflicts_page(request: Request, name: str, offset: int = 0) -> Response:
    viewer(request)
    core = core_of(request)
    try:
        page = core.records.conflicts(name, limit=CONFLICTS_SHOWN + 1, offset=max(0, offset))
    except DataferryError as exc:
        return render(request, "error.html", status_code=exc.status_code, message=exc.message)
    return render(
        request,
        "conflicts.html",
        collection=name,
        conflicts=page[:CONFLICTS_SHOWN],
        offset=max(0, offset),
        more=len(page) > CONFLICTS_SHOWN,
        page_size=CONFLICTS_SHOWN,
    )


@router.post("/replication/peers/{name}/sync")
def sync_now(request: Request, name: str, csrf: str = Form("")) -> Response:
    acting(request, csrf)
    try:
        job = core_of(request).sync.submit(name, [])
    except DataferryError as exc:
        return redirect(request, "/replication?" + urlencode({"notice": exc.message}))
    return redirect(request, f"/jobs/{job.id}")
