"""``/api/v1/endpoints``: secrets go in, never come out."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict, Field

from dataferry.api.deps import core as get_core
from dataferry.app import Core
from dataferry.endpoints import browse

router = APIRouter(tags=["endpoints"])


class EndpointIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    url: str
    options: dict[str, Any] = Field(default_factory=dict)
    secrets: dict[str, str] = Field(default_factory=dict)


@router.get("/endpoints")
def list_endpoints(core: Core = Depends(get_core)) -> dict[str, Any]:
    return {"endpoints": [e.document() for e in core.endpoints.list()]}


@router.post("/endpoints", status_code=201)
def add_endpoint(body: EndpointIn, core: Core = Depends(get_core)) -> dict[str, Any]:
    return core.endpoints.add(body.name, body.url, body.options, body.secrets).document()


@router.get("/endpoints/{name}")
def get_endpoint(name: str, core: Core = Depends(get_core)) -> dict[str, Any]:
    return core.endpoints.get(name).document()


@router.get("/endpoints/{name}/files")
def list_files(
    name: str,
    path: str = "",
    recursive: bool = False,
    limit: int = browse.DEFAULT_LIMIT,
    offset: int = 0,
    core: Core = Depends(get_core),
) -> dict[str, Any]:
    """What is at ``path`` (relative to the endpoint's root; empty: the root): a
    folder's entries, by path, or the file itself."""
    return browse.listing(core.endpoints, name, path, recursive, limit, offset).document()


@router.delete("/endpoints/{name}", status_code=204)
def remove_endpoint(name: str, core: Core = Depends(get_core)) -> Response:
    core.endpoints.remove(name)
    return Response(status_code=204)
