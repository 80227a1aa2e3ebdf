"""``/api/v1/collections``: collections, records, the change feed, conflicts,
export and import. Thin: every rule is in ``dataferry.records.service``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.responses import Response, StreamingResponse

from dataferry.api.deps import core as get_core
from dataferry.app import Core
from dataferry.errors import InvalidRequest

router = APIRouter(tags=["records"])


@router.get("/collections")
def list_collections(core: Core = Depends(get_core)) -> dict[str, Any]:
    return {"collections": [c.document() for c in core.records.collections()]}


@router.put("/collections/{name}")
def put_collection(
    name: str,
    body: dict[str, Any] = Body(default_factory=dict),
    core: Core = Depends(get_core),
) -> dict[str, Any]:
    """Create a collection; ``{"schema": {...}}`` sets its JSON Schema, ``{"schema": null}``
    drops it."""
    unknown = set(body) - {"schema"}
    if unknown:
        raise InvalidRequest(f"unknown keys {sorted(unknown)}; only 'schema' is accepted")
    core.records.create_collection(name)
    if "schema" in body:
        return core.records.set_schema(name, body["schema"]).document()
    return core.records.collection(name).document()


@router.get("/collections/{name}")
def get_collection(name: str, core: Core = Depends(get_core)) -> dict[str, Any]:
    return core.records.collection(name).document()


@router.get("/collections/{name}/records")
def list_records(
    name: str,
    include_deleted: bool = False,
    limit: int = Query(100),
    offset: int = Query(0),
    core: Core = Depends(get_core),
) -> dict[str, Any]:
    records, total = core.records.list(name, include_deleted, limit, offset)
    return {
        "records": [r.document() for r in records],
        "total": total,
        "limit": limit,
        "offset": offset,
    }


@router.post("/collections/{name}/records", status_code=201)
def create_record(
    name: str, data: dict[str, Any] = Body(...), core: Core = Depends(get_core)
) -> dict[str, Any]:
    return core.records.put(name, data).document()


@router.put("/collections/{name}/records/{uuid}")
def put_record(
    name: str, uuid: str, data: dict[str, Any] = Body(...), core: Core = Depends(get_core)
) -> dict[str, Any]:
    return core.records.put(name, data, uuid).document()


@router.get("/collections/{name}/records/{uuid}")
def get_record(
    name: str, uuid: str, include_deleted: bool = False, core: Core = Depends(get_core)
) -> dict[str, Any]:
    return core.records.get(name, uuid, include_deleted).document()


@router.delete("/collections/{name}/records/{uuid}")
def delete_record(name: str, uuid: str, core: Core = Depends(get_core)) -> dict[str, Any]:
    """Delete a record; the answer is its tombstone."""
    return core.records.delete(name, uuid).document()


@router.get("/collections/{name}/changes")
def changes(
    name: str,
    since: int = Query(0),
    limit: int = Query(100),
    core: Core = Depends(get_core),
) -> dict[str, Any]:
    return core.records.changes(name, since, limit).document()


@router.get("/collections/{name}/conflicts")
def conflicts(
    name: str,
    uuid: str | None = None,
    limit: int = Query(100),
    offset: int = Query(0),
    core: Core = Depends(get_core),
) -> dict[str, Any]:
    return {"conflicts": core.records.conflicts(name, uuid, limit, offset)}


@router.get("/collections/{name}/export")
def export(
    name: str,
    format: str = Query("json"),
    since: str | None = None,
    until: str | None = None,
    core: Core = Depends(get_core),
) -> Response:
    """Records (tombstones too) last changed in [since, until), as csv, json or xml."""
    from dataferry.records import exchange

    media, chunks = exchange.export(core.records, name, format, since, until)
    return StreamingResponse(chunks, media_type=media)


@router.post("/collections/{name}/import")
async def import_(
    name: str, request: Request, format: str = Query(...), core: Core = Depends(get_core)
) -> dict[str, Any]:
    """Upsert records by UUID from a csv, json or xml body; reports what happened per row."""
    from starlette.concurrency import run_in_threadpool

    from dataferry.records import exchange

    body = await request.body()
    report = await run_in_threadpool(exchange.import_, core.records, name, format, body)
    return report.document()
