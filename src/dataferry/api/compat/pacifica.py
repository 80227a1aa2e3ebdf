"""Pacifica ingest's doors: ``POST /upload`` and ``POST /ingest`` (a tar body),
``POST /move`` (a metadata document), ``GET /get_state?job_id=N``.

The body is streamed straight to the spool file: Starlette never buffers it, so
memory does not grow with the bundle. The answer is the job's state as soon as
the body is in; the Pacifica uploader then polls ``/get_state``.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

from anyio import to_thread
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect

from dataferry.api.auth import bearer, token_ok
from dataferry.errors import InvalidRequest, JobLost, Unauthorized
from dataferry.ingest.service import pacifica_state

if TYPE_CHECKING:
    from dataferry.app import Core
    from dataferry.ingest.service import Upload

# Chunks are handed to a worker thread in batches of about this many bytes.
WRITE_BATCH = 1024 * 1024
# Past the size limit, this much more is read and dropped so the client hears the answer.
DRAIN_BYTES = 64 * 1024 * 1024


def require_ingest_token(request: Request) -> None:
    """With tokens configured: a bearer token, or HTTP Basic with a token as the password
    (the Pacifica uploader passes ``auth`` straight to requests)."""
    tokens: list[str] = request.app.state.core.settings.tokens
    if not tokens:
        return
    presented = bearer(request)
    if not presented:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "basic":
            try:
                presented = base64.b64decode(value.strip()).decode().partition(":")[2]
            except (ValueError, UnicodeDecodeError):
                presented = ""
    if not presented:
        raise Unauthorized("missing token (Authorization: Bearer ... or Basic with the token)")
    if not token_ok(tokens, presented):
        raise Unauthorized("invalid token")


router = APIRouter(tags=["pacifica"], dependencies=[Depends(require_ingest_token)])


def _core(request: Request) -> Core:
    core: Core = request.app.state.core
    return core


def _declared(request: Request) -> int | None:
    value = request.headers.get("content-length")
    if value is None:
        return None
    try:
        size = int(value)
    except ValueError:
        raise InvalidRequest(f"Content-Length {value!r} is not a number") from None
    if size < 0:
        raise InvalidRequest("Content-Length is negative")
    return size


async def _receive(request: Request) -> JSONResponse:
    core = _core(request)
    declared = _declared(request)
    upload: Upload = await to_thread.run_sync(core.ingest.begin_upload, declared)
    if declared is not None and declared > upload.limit:
        job = await to_thread.run_sync(upload.fail, upload.too_large_message())
        return JSONResponse(pacifica_state(job), status_code=413)
    pending: list[bytes] = []
    batch = 0
    try:
        async for chunk in request.stream():
            if not chunk:
                continue
            pending.append(chunk)
            batch += len(chunk)
            if batch >= WRITE_BATCH:
                await to_thread.run_sync(upload.write, pending)
                pending, batch = [], 0
                if upload.over_limit and upload.received > upload.limit + DRAIN_BYTES:
                    break
        if pending:
            await to_thread.run_sync(upload.write, pending)
    except ClientDisconnect:
        received = upload.received + batch
        message = f"the upload stopped after {received} bytes: the client went away"
        if declared is not None:
            message = f"the upload stopped after {received} of {declared} bytes"
        job = await to_thread.run_sync(upload.fail, message)
        return JSONResponse(pacifica_state(job), status_code=400)
    except JobLost:
        job = await to_thread.run_sync(upload.fail, "the job was cancelled during the upload")
        return JSONResponse(pacifica_state(job), status_code=409)
    except BaseException as exc:
        await to_thread.run_sync(upload.fail, f"the upload failed: {type(exc).__name__}: {exc}")
        raise
    job = await to_thread.run_sync(upload.complete)
    doc = pacifica_state(job)
    if upload.over_limit:
        return JSONResponse(doc, status_code=413)
    return JSONResponse(doc, status_code=400 if doc["state"] == "FAILED" else 200)


@router.post("/upload", summary="Upload a bundle (tar body), Pacifica-compatible")
async def upload(request: Request) -> JSONResponse:
    return await _receive(request)


@router.post("/ingest", summary="Upload a bundle (tar body); same as /upload")
async def ingest(request: Request) -> JSONResponse:
    return await _receive(request)


@router.post("/move", summary="Ingest files already on the staging endpoint")
async def move(request: Request) -> JSONResponse:
    core = _core(request)
    core.ingest.open_staging().close()  # refuse at once when /move is not configured
    body = await request.body()
    job = await to_thread.run_sync(core.ingest.move, body)
    return JSONResponse(pacifica_state(job))


@router.get("/get_state", summary="An ingest job's state, in Pacifica's shape")
def get_state(request: Request, job_id: int) -> dict[str, Any]:
    return _core(request).ingest.state(job_id)


@router.get("/get_state/{job_id}", include_in_schema=False)
def get_state_path(request: Request, job_id: int) -> dict[str, Any]:
    return _core(request).ingest.state(job_id)
