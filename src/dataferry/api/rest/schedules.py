"""``/api/v1/schedules``: transfers submitted again every so often."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict

from dataferry.api.deps import core as get_core
from dataferry.api.rest.transfers import TransferIn
from dataferry.app import Core

router = APIRouter(tags=["schedules"])


class ScheduleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    transfer: TransferIn
    # checked by the service (a bool or "60" is not a number of seconds)
    every: Any
    start: Any = None  # ISO 8601 with a zone; absent: now


@router.get("/schedules")
def list_schedules(core: Core = Depends(get_core)) -> dict[str, Any]:
    return {"schedules": [s.document() for s in core.schedules.list()]}


@router.post("/schedules", status_code=201)
def add_schedule(body: ScheduleIn, core: Core = Depends(get_core)) -> dict[str, Any]:
    schedule = core.schedules.add(body.name, body.transfer.request(), body.every, body.start)
    return schedule.document()


@router.get("/schedules/{name}")
def get_schedule(name: str, core: Core = Depends(get_core)) -> dict[str, Any]:
    return core.schedules.get(name).document()


@router.delete("/schedules/{name}", status_code=204)
def remove_schedule(name: str, core: Core = Depends(get_core)) -> Response:
    core.schedules.remove(name)
    return Response(status_code=204)


@router.post("/schedules/{name}/pause")
def pause_schedule(name: str, core: Core = Depends(get_core)) -> dict[str, Any]:
    return core.schedules.pause(name).document()


@router.post("/schedules/{name}/resume")
def resume_schedule(name: str, core: Core = Depends(get_core)) -> dict[str, Any]:
    return core.schedules.resume(name).document()


@router.post("/schedules/{name}/run", status_code=202)
def run_schedule(name: str, core: Core = Depends(get_core)) -> dict[str, Any]:
    """Submit the schedule's transfer now; 202 with the job document."""
    return core.schedules.run_now(name).document()
