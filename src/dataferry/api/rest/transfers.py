"""``/api/v1/transfers``: validate, then 202 with the job document."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from dataferry.api.deps import core as get_core
from dataferry.app import Core
from dataferry.transfers.limits import Bytes, Seconds
from dataferry.transfers.request import TransferRequest

router = APIRouter(tags=["transfers"])


class TransferIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: str
    destination: str
    mode: str = "copy"
    checksum: str = "sha256"
    overwrite: str | None = None
    expected_checksum: str | None = None
    include: list[str] | None = None
    exclude: list[str] | None = None
    compare: str | None = None
    empty_folders: StrictBool = False
    # Whole bytes and seconds only (the CLI reads "10M" and "7d"); ranges are the
    # request's rules (transfers/limits.py).
    min_size: Bytes | None = Field(None, description="bytes: only files at least this big")
    max_size: Bytes | None = Field(None, description="bytes: only files at most this big")
    min_age: Seconds | None = Field(
        None, description="seconds: only files modified longer ago than this"
    )
    max_age: Seconds | None = Field(None, description="seconds: only files modified within this")

    def request(self) -> TransferRequest:
        return TransferRequest.build(
            self.source,
            self.destination,
            self.mode,
            self.checksum,
            self.overwrite,
            self.expected_checksum,
            self.include,
            self.exclude,
            self.compare,
            self.empty_folders,
            self.min_size,
            self.max_size,
            self.min_age,
            self.max_age,
        )


@router.post("/transfers", status_code=202)
def submit_transfer(body: TransferIn, core: Core = Depends(get_core)) -> dict[str, Any]:
    return core.transfers.submit(body.request()).document()


@router.post("/transfers/preview")
def preview_transfer(body: TransferIn, core: Core = Depends(get_core)) -> dict[str, Any]:
    """A dry run: the files the transfer would take (and, for mirror, remove); no job."""
    return core.transfers.preview(body.request())
