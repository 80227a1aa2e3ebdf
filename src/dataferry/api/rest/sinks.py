"""``/api/v1/sinks``: push records to a partner's web service. The API key goes in,
never comes out."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Query, Response

from dataferry.api.deps import core as get_core
from dataferry.app import Core
from dataferry.errors import InvalidRequest

router = APIRouter(tags=["sinks"])


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object")
    return body


@router.get("/sinks")
def list_sinks(core: Core = Depends(get_core)) -> dict[str, Any]:
    return {"sinks": core.sinks.list()}


@router.post("/sinks", status_code=201)
def add_sink(body: Any = Body(...), core: Core = Depends(get_core)) -> dict[str, Any]:
    """Create a sink: ``{"name", "source": {"collection": NAME} | {"table": {...}},
    "url", "retry_interval", ...}`` (see docs/sinks.md)."""
    return core.sinks.add(_object(body))


@router.get("/sinks/{name}")
def get_sink(name: str, core: Core = Depends(get_core)) -> dict[str, Any]:
    return core.sinks.get(name)


@router.patch("/sinks/{name}")
def update_sink(name: str, body: Any = Body(...), core: Core = Depends(get_core)) -> dict[str, Any]:
    return core.sinks.update(name, _object(body))


@router.delete("/sinks/{name}", status_code=204)
def remove_sink(name: str, core: Core = Depends(get_core)) -> Response:
    core.sinks.remove(name)
    return Response(status_code=204)


@router.post("/sinks/{name}/pause")
def pause_sink(name: str, core: Core = Depends(get_core)) -> dict[str, Any]:
    return core.sinks.pause(name)


@router.post("/sinks/{name}/resume")
def resume_sink(name: str, core: Core = Depends(get_core)) -> dict[str, Any]:
    return core.sinks.resume(name)


@router.post("/sinks/{name}/poll")
def poll_sink(name: str, core: Core = Depends(get_core)) -> dict[str, Any]:
    """Look at the source now instead of waiting for the poll interval."""
    core.sinks.get(name)
    core.sinks.wake(name)
    return {"name": name, "polling": True}


@router.get("/sinks/{name}/failures")
def sink_failures(
    name: str,
    limit: int = Query(1000, ge=1, le=100000),
    offset: int = Query(0, ge=0),
    core: Core = Depends(get_core),
) -> dict[str, Any]:
    """The dead letters: changes given up on after ``give_up_after`` attempts."""
    return {"name": name, "failures": core.sinks.failures(name, limit, offset)}


@router.post("/sinks/{name}/retry")
def retry_sink(
    name: str, body: Any = Body(default=None), core: Core = Depends(get_core)
) -> dict[str, Any]:
    """Re-queue dead letters: all, or ``{"keys": [...]}``."""
    keys: list[str] | None = None
    if body is not None:
        keys = _object(body).get("keys")
        if keys is not None and (
            not isinstance(keys, list) or not all(isinstance(k, str) for k in keys)
        ):
            raise InvalidRequest("keys must be a list of record keys")
    return {"name": name, "requeued": core.sinks.retry(name, keys)}
