"""``/api/v1/transactions``: ingested transactions and their archived files."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from dataferry.api.deps import core as get_core
from dataferry.app import Core

router = APIRouter(tags=["ingest"])

CHUNK = 1024 * 1024


@router.get("/transactions")
def list_transactions(
    limit: int = Query(50),
    offset: int = Query(0),
    core: Core = Depends(get_core),
) -> dict[str, Any]:
    rows, total = core.ingest.transaction_page(limit, offset)
    return {"transactions": rows, "total": total, "limit": limit, "offset": offset}


@router.get("/transactions/{transaction_id}")
def get_transaction(transaction_id: int, core: Core = Depends(get_core)) -> dict[str, Any]:
    return core.ingest.transaction(transaction_id)


@router.get("/transactions/{transaction_id}/files/{file_id}/content")
def file_content(
    transaction_id: int, file_id: int, core: Core = Depends(get_core)
) -> StreamingResponse:
    row, reader = core.ingest.archived_file(transaction_id, file_id)

    def chunks() -> Iterator[bytes]:
        try:
            while block := reader.read(CHUNK):
                yield block
        finally:
            reader.close()

    name = row.path.rsplit("/", 1)[-1].replace('"', "")
    return StreamingResponse(
        chunks(),
        media_type=row.mimetype or "application/octet-stream",
        headers={
            "Content-Length": str(row.size),
            "Content-Disposition": f'attachment; filename="{name}"',
        },
    )
