"""``/api/v1/replication``: the instance-to-instance protocol (version 2, and 1 for
older peers), and ``/api/v1/peers``: the peer table and on-demand syncs. Peers
authenticate with the bearer tokens this instance accepts (``tokens``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Query, Request, Response

from dataferry.api.deps import core as get_core
from dataferry.app import Core
from dataferry.errors import InvalidRequest
from dataferry.records.model import loads

router = APIRouter(tags=["replication"])


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    try:
        return loads(raw)
    except ValueError as exc:
        raise InvalidRequest(f"the body is not JSON: {exc}") from None


@router.get("/replication/hello")
def hello(core: Core = Depends(get_core)) -> dict[str, Any]:
    """This instance: protocol version, instance id, epoch, owner, contact, collections."""
    return core.replication_protocol.hello()


@router.post("/replication/pull")
async def pull(request: Request, core: Core = Depends(get_core)) -> Response:
    """The next batch of this instance's change feed after ``since`` (see docs/replication.md)."""
    from starlette.concurrency import run_in_threadpool

    body = await _json_body(request)
    data = await run_in_threadpool(core.replication_protocol.pull, body)
    return Response(content=data, media_type="application/json")


@router.post("/replication/fetch")
async def fetch(request: Request, core: Core = Depends(get_core)) -> Response:
    """Full states of named records, for a peer that lost states it once sent."""
    from starlette.concurrency import run_in_threadpool

    body = await _json_body(request)
    data = await run_in_threadpool(core.replication_protocol.fetch, body)
    return Response(content=data, media_type="application/json")


@router.get("/replication/checkpoint")
def checkpoint(
    collection: str = Query(...), source: str = Query(...), core: Core = Depends(get_core)
) -> dict[str, Any]:
    """What this instance has received of ``source``'s feed for ``collection``."""
    return core.replication_protocol.checkpoint(collection, source)


@router.get("/replication/checkpoints")
def checkpoints(collection: str | None = None, core: Core = Depends(get_core)) -> dict[str, Any]:
    """The version vector: per collection and source instance, the cursor received."""
    return {
        "instance_id": core.records.instance_id,
        "checkpoints": core.records.checkpoints(collection),
    }


@router.post("/replication/push")
async def push(request: Request, core: Core = Depends(get_core)) -> dict[str, Any]:
    """Apply a batch of the sender's feed; the checkpoint moves in the same transaction."""
    from starlette.concurrency import run_in_threadpool

    raw = await request.body()
    result: dict[str, Any] = await run_in_threadpool(core.replication_protocol.push, raw)
    return result


# -- peers ---------------------------------------------------------------------------------


@router.get("/peers")
def list_peers(discovered: bool = False, core: Core = Depends(get_core)) -> dict[str, Any]:
    """Registered peers; with ``discovered=true``, instances seen over mDNS instead."""
    if discovered:
        found = core.discovery.found() if core.discovery is not None else []
        return {"discovered": found, "enabled": core.settings.records.discovery}
    return {"peers": [p.document() for p in core.peers.list()]}


@router.post("/peers", status_code=201)
def add_peer(body: dict[str, Any] = Body(...), core: Core = Depends(get_core)) -> dict[str, Any]:
    unknown = set(body) - {"name", "url", "token", "collections", "interval_seconds"}
    if unknown:
        raise InvalidRequest(f"unknown keys {sorted(unknown)}")
    if not isinstance(body.get("name"), str) or not isinstance(body.get("url"), str):
        raise InvalidRequest("name and url are required strings")
    cols = body.get("collections") or []
    if not isinstance(cols, list) or not all(isinstance(c, str) for c in cols):
        raise InvalidRequest("collections must be a list of names")
    token = body.get("token") or ""
    if not isinstance(token, str):
        raise InvalidRequest("token must be a string")
    interval = body.get("interval_seconds")
    if interval is not None and (not isinstance(interval, int) or isinstance(interval, bool)):
        raise InvalidRequest("interval_seconds must be an integer")
    return core.peers.add(body["name"], body["url"], token, cols, interval).document()


@router.get("/peers/{name}")
def get_peer(name: str, core: Core = Depends(get_core)) -> dict[str, Any]:
    return core.peers.get(name).document()


@router.delete("/peers/{name}", status_code=204)
def remove_peer(name: str, core: Core = Depends(get_core)) -> Response:
    core.peers.remove(name)
    return Response(status_code=204)


@router.post("/peers/{name}/sync", status_code=202)
def sync_peer(
    name: str, body: dict[str, Any] = Body(default_factory=dict), core: Core = Depends(get_core)
) -> dict[str, Any]:
    """Start a ``replicate`` job with this peer; the answer is the job document."""
    cols = body.get("collections") or []
    if not isinstance(cols, list):
        raise InvalidRequest("collections must be a list of names")
    return core.sync.submit(name, cols).document()
