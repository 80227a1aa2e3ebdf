"""``/api/v1/datasets`` (provider side) and ``/api/v1/synced-datasets`` (consumer side).

Operators use the API token; peers name their site and use its token (the
announce call, metadata, transfer requests and status)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from dataferry.api.deps import core as get_core
from dataferry.api.site_auth import consumer_or_admin, require_consumer, require_site
from dataferry.app import Core
from dataferry.datasets.provider import http_code
from dataferry.datasets.sites import Site
from dataferry.errors import InvalidRequest

#: operator routes (mounted behind the API token)
admin = APIRouter(tags=["datasets"])
#: peer routes (each checks the calling site itself)
peer = APIRouter(tags=["datasets"])


class PublishIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    uid: str
    source: str = Field(description="ENDPOINT:PATH of the dataset's folder")
    meta: dict[str, str] = Field(default_factory=dict)


@admin.post("/datasets", status_code=202)
def publish(body: PublishIn, core: Core = Depends(get_core)) -> dict[str, Any]:
    return core.provider.publish(body.uid, body.source, body.meta).document()


@admin.get("/datasets")
def list_datasets(core: Core = Depends(get_core)) -> dict[str, Any]:
    return {"datasets": [d.document(with_manifest=False) for d in core.provider.list()]}


class BroadcastIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    site: str | None = None


@admin.post("/datasets/{uid}/broadcast")
def broadcast(uid: str, body: BroadcastIn, core: Core = Depends(get_core)) -> dict[str, Any]:
    return {"uid": uid, "results": core.provider.broadcast(uid, body.site)}


@peer.get("/datasets/{uid}", response_model=None)
def get_dataset(
    uid: str,
    format: str = "json",
    caller: Site | None = Depends(consumer_or_admin),
    core: Core = Depends(get_core),
) -> Response | dict[str, Any]:
    if format == "mets":
        return Response(core.provider.mets(uid), media_type="application/xml")
    if format != "json":
        raise InvalidRequest(f"format {format!r} is not one of: json, mets")
    return core.provider.get(uid).document()


class TransferRequestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    inbound: str = Field("", description="ENDPOINT:PATH on the consumer; default: as registered")


@peer.post("/datasets/{uid}/transfer-requests", status_code=202)
def request_transfer(
    uid: str,
    body: TransferRequestIn,
    site: Site = Depends(require_consumer),
    core: Core = Depends(get_core),
) -> dict[str, Any]:
    return core.provider.request_transfer(uid, site.name, body.inbound)


@peer.get("/datasets/{uid}/transfer-status")
def transfer_status(
    uid: str,
    transfer_id: int,
    site: Site = Depends(require_consumer),
    core: Core = Depends(get_core),
) -> JSONResponse:
    doc = core.provider.transfer_status(uid, site.name, transfer_id)
    return JSONResponse(doc, http_code(doc["status"]))


# -- consumer side ---------------------------------------------------------------------
class NotifyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    uid: str
    version: int = 1
    meta: dict[str, str] = Field(default_factory=dict)


@peer.post("/synced-datasets")
def notify(
    body: NotifyIn, site: Site = Depends(require_site), core: Core = Depends(get_core)
) -> dict[str, Any]:
    return core.consumer.notify(site.name, body.uid, body.version, body.meta).document()


@admin.get("/synced-datasets")
def list_synced(state: str | None = None, core: Core = Depends(get_core)) -> dict[str, Any]:
    return {"datasets": [d.document() for d in core.consumer.list(state)]}


@admin.get("/synced-datasets/{uid}")
def get_synced(uid: str, core: Core = Depends(get_core)) -> dict[str, Any]:
    return core.consumer.get(uid).document()


@admin.get("/synced-datasets/{uid}/history")
def history(uid: str, core: Core = Depends(get_core)) -> dict[str, Any]:
    return {"uid": uid, "history": core.consumer.history(uid)}


@admin.delete("/synced-datasets/{uid}", status_code=204)
def forget(uid: str, core: Core = Depends(get_core)) -> None:
    """Remove a complete or permanently failed dataset's record (its files stay)."""
    core.consumer.forget(uid)


@admin.post("/synced-datasets/{uid}/restart")
def restart(uid: str, core: Core = Depends(get_core)) -> dict[str, Any]:
    return core.consumer.restart(uid).document()
