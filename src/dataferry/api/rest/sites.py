"""``/api/v1/sites``: the institutions we deliver to or receive from."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict

from dataferry.api.deps import core as get_core
from dataferry.app import Core

router = APIRouter(tags=["sites"])


class SiteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    url: str
    token: str
    role: str = "consumer"
    inbound: str = ""


@router.get("/sites")
def list_sites(role: str | None = None, core: Core = Depends(get_core)) -> dict[str, Any]:
    return {"sites": [s.document() for s in core.sites.list(role)]}


@router.post("/sites", status_code=201)
def add_site(body: SiteIn, core: Core = Depends(get_core)) -> dict[str, Any]:
    return core.sites.add(body.name, body.url, body.token, body.role, body.inbound).document()


@router.get("/sites/{name}")
def get_site(name: str, core: Core = Depends(get_core)) -> dict[str, Any]:
    return core.sites.get(name).document()


@router.delete("/sites/{name}", status_code=204)
def remove_site(name: str, core: Core = Depends(get_core)) -> None:
    core.sites.remove(name)
