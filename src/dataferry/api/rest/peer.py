"""The peer file protocol over REST: ``/api/v1/peer/hello`` (what this version
accepts beyond the base protocol) and ``/api/v1/peer/endpoints/{endpoint}/...``.

Every request names the calling site (``X-Dataferry-Site``) and carries that site's
token; the endpoint's ``peer_read`` / ``peer_write`` options say what it may do.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from dataferry.api.deps import core as get_core
from dataferry.api.site_auth import require_site
from dataferry.app import Core
from dataferry.datasets import peercaps
from dataferry.datasets.peerfiles import BatchUpload
from dataferry.datasets.peerfs import RepeatedKey, batch_header, each_key_once
from dataferry.datasets.sites import Site
from dataferry.endpoints.filesystem import MAX_FILE_SIZE, MAX_MTIME_NS
from dataferry.endpoints.paths import clean_relative
from dataferry.errors import InvalidRequest
from dataferry.text import cut


def _each_parameter_once(request: Request) -> None:
    """A query parameter given twice is refused: which one counts is a guess (the
    last did, so ``DELETE /files?path=a&path=b`` removed ``b``). So is a query whose
    percent-escapes are not UTF-8: the framework puts U+FFFD for each bad byte, a
    name the peer never sent."""
    query = request.scope.get("query_string", b"").decode("latin-1")
    try:
        items = parse_qsl(query, keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        raise InvalidRequest("the query escapes bytes that are not UTF-8 text") from None
    seen: set[str] = set()
    for key, _ in items:
        if key in seen:
            raise InvalidRequest(f"query parameter {key!r} is given twice")
        seen.add(key)


async def _json_keys_once(request: Request) -> None:
    """A JSON body that gives a key twice is refused (the framework's parser keeps
    the last: ``{"size": 1, "size": 12}`` was checked as 12). Anything else that is
    not JSON is left to the framework to refuse."""
    try:
        json.loads(await request.body(), object_pairs_hook=each_key_once)
    except RepeatedKey as exc:
        raise InvalidRequest(f"the body {exc}") from None
    except (ValueError, RecursionError):
        pass


def _digits_up_to(value: str, most: int) -> bool:
    """ASCII digits only, of a number from 0 to ``most`` (not "3.0", "+3", " 3" or
    "3_0", which Python's ``int`` would take; the length is checked first, as ``int``
    refuses text of thousands of digits)."""
    return (
        len(value) <= len(str(most)) and _DIGITS.fullmatch(value) is not None and int(value) <= most
    )


def _whole(name: str, value: str) -> int:
    """A query parameter that is a number of bytes, 0 to 2^63-1 (``_digits_up_to``)."""
    if not _digits_up_to(value, MAX_FILE_SIZE):
        raise InvalidRequest(
            f"{name} must be a whole number of bytes, 0 to {MAX_FILE_SIZE}: {cut(value)!r}"
        )
    return int(value)


def _mtime(value: str | None, commit: str | None) -> int | None:
    """The query parameter ``mtime``: whole nanoseconds since 1970 as ASCII digits, 0
    to ``MAX_MTIME_NS``; only with ``commit`` (it is set on the upload put in place)."""
    if value is None:
        return None
    if commit is None:
        raise InvalidRequest("mtime is set on an upload put in place: it needs commit")
    if not _digits_up_to(value, MAX_MTIME_NS):
        raise InvalidRequest(
            f"mtime must be whole nanoseconds since 1970, 0 to {MAX_MTIME_NS}: {cut(value)!r}"
        )
    return int(value)


def _position(digits: str) -> int:
    """A byte position of a Range header; one past any file's end when it is longer
    than a file can be (Python's ``int`` refuses text of thousands of digits)."""
    return int(digits) if len(digits) <= len(str(MAX_FILE_SIZE)) else MAX_FILE_SIZE + 1


def _flag(name: str, value: str) -> bool:
    """A query parameter that is a flag: ``true`` or ``false``, nothing else."""
    if value not in ("true", "false"):
        raise InvalidRequest(f"{name} must be true or false, not {value[:40]!r}")
    return value == "true"


# Not below an endpoint: what a version accepts is the same for all of them, and a
# 404 then means only "a version before the hello", never "no such endpoint".
hello_router = APIRouter(prefix="/peer", tags=["peer files"])


@hello_router.get("/hello")
def hello(site: Site = Depends(require_site)) -> dict[str, Any]:
    """``{"protocol": N, "features": [...]}``: the optional fields this version takes."""
    return peercaps.hello()


router = APIRouter(
    prefix="/peer/endpoints/{endpoint}",
    tags=["peer files"],
    dependencies=[Depends(_each_parameter_once)],
)

_RANGE = re.compile(r"^bytes=([0-9]+)-([0-9]*)$")
_DIGITS = re.compile(r"[0-9]+")
# Upload bytes are written in blocks this large (fewer system calls).
_WRITE_BLOCK = 4 * 1024 * 1024


@router.get("/stat")
def stat(
    endpoint: str,
    path: str = "",
    site: Site = Depends(require_site),
    core: Core = Depends(get_core),
) -> dict[str, Any]:
    return core.peer_files.stat(site.name, endpoint, path).document()


@router.get("/list")
def list_folder(
    endpoint: str,
    path: str = "",
    recursive: str = "false",
    site: Site = Depends(require_site),
    core: Core = Depends(get_core),
) -> dict[str, Any]:
    entries = core.peer_files.list(site.name, endpoint, path, _flag("recursive", recursive))
    return {"entries": [e.document() for e in entries]}


@router.get("/files")
def read_file(
    endpoint: str,
    request: Request,
    path: str,
    site: Site = Depends(require_site),
    core: Core = Depends(get_core),
) -> Response:
    start, end = 0, None
    header = request.headers.get("range")
    if header:
        m = _RANGE.match(header.strip())
        if not m:
            raise InvalidRequest(f"Range {header!r} is not of the form bytes=START-[END]")
        start, end = _position(m.group(1)), _position(m.group(2)) if m.group(2) else None
        if end is not None and end < start:
            raise InvalidRequest(f"Range {header!r} ends before it starts")
    size, blocks = core.peer_files.read(site.name, endpoint, path, start, end)
    if header and size == 0 and start == 0:
        header = None  # an empty file has no byte to name: its whole (empty) body
    if header and start >= size:
        return Response(status_code=416, headers={"Content-Range": f"bytes */{size}"})
    last = size - 1 if end is None else min(end, size - 1)
    length = max(0, last - start + 1)
    headers = {"Content-Length": str(length), "Accept-Ranges": "bytes"}
    if header:
        headers["Content-Range"] = f"bytes {start}-{last}/{size}"
    return StreamingResponse(
        blocks,
        status_code=206 if header else 200,
        headers=headers,
        media_type="application/octet-stream",
    )


@router.put("/uploads")
async def upload(
    endpoint: str,
    request: Request,
    path: str,
    offset: str = "0",
    commit: str | None = None,
    durable: str = "true",
    mtime: str | None = None,
    site: Site = Depends(require_site),
) -> dict[str, Any]:
    """Write the body into the temporary name ``path`` from ``offset``; with ``commit``
    the upload is then given ``mtime`` (if any), synced (``durable``) and renamed to
    that path in the same call."""
    core: Core = request.app.state.core
    start, sync = _whole("offset", offset), _flag("durable", durable)
    when = _mtime(mtime, commit)
    declared = int(request.headers.get("content-length") or -1)
    if start == 0 and 0 <= declared <= _WRITE_BLOCK:
        # a small file: one thread hop for write, sync and rename
        data = await request.body()
        entry = await run_in_threadpool(
            core.peer_files.put_small, site.name, endpoint, path, data, commit, sync, when
        )
        return entry.document() if commit is not None else {"path": entry.path, "size": entry.size}
    f = await run_in_threadpool(
        core.peer_files.open_upload, site.name, endpoint, path, start, commit
    )
    size = start
    try:
        pending: list[bytes] = []
        held = 0
        async for chunk in request.stream():
            pending.append(chunk)
            held += len(chunk)
            if held >= _WRITE_BLOCK:
                await run_in_threadpool(f.write, b"".join(pending))
                size += held
                pending, held = [], 0
        if pending:
            await run_in_threadpool(f.write, b"".join(pending))
            size += held
        await run_in_threadpool(f.finish, when)
    finally:
        f.close()
    if commit is not None:
        entry = await run_in_threadpool(
            core.peer_files.commit, site.name, endpoint, path, commit, size, sync
        )
        return entry.document()
    return {"path": clean_relative(path), "size": size}


@router.post("/uploads/batch")
async def upload_batch(
    endpoint: str, request: Request, site: Site = Depends(require_site)
) -> dict[str, Any]:
    """Several uploads put in place at once (body: see ``peerfs.batch_parts``): the small
    files' bytes written as they arrive, the group synced once, each checked and renamed."""
    core: Core = request.app.state.core
    declared = int(request.headers.get("content-length") or -1)
    chunks = request.stream()
    start = bytearray()
    header = None
    async for chunk in chunks:
        start += chunk
        try:
            header = batch_header(start)
        except ValueError as exc:
            raise InvalidRequest(f"batch body: {exc}") from None
        if header is not None:
            break
    if header is None:
        raise InvalidRequest("batch body: shorter than its header")
    files, data_at = header
    batch = await run_in_threadpool(core.peer_files.start_batch, site.name, endpoint, files)
    if declared >= 0 and declared - data_at != batch.expected:
        raise InvalidRequest("batch: the data does not add up to the sizes given")
    try:
        await _receive_batch(batch, bytes(start[data_at:]), chunks)
        entries = await run_in_threadpool(batch.finish)
    except BaseException:
        await run_in_threadpool(batch.abort)
        raise
    return {"committed": [e.path for e in entries]}


async def _receive_batch(batch: BatchUpload, first: bytes, chunks: AsyncIterator[bytes]) -> None:
    """Write the body's data as it arrives, in runs of ``_WRITE_BLOCK`` bytes; one run
    is written (in a thread) while the next is received."""
    run: list[bytes] = [first] if first else []
    held = len(first)
    writing: asyncio.Future[None] | None = None
    try:
        async for chunk in chunks:
            run.append(chunk)
            held += len(chunk)
            if held >= _WRITE_BLOCK:
                if writing is not None:
                    await writing
                writing = asyncio.ensure_future(run_in_threadpool(batch.write, run))
                run, held = [], 0
    finally:
        if writing is not None:
            await writing
    if run:
        await run_in_threadpool(batch.write, run)


@router.get("/uploads")
def upload_size(
    endpoint: str, path: str, site: Site = Depends(require_site), core: Core = Depends(get_core)
) -> dict[str, Any]:
    size = core.peer_files.upload_size(site.name, endpoint, path)
    return {"path": clean_relative(path), "size": size}


class SyncIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    uploads: list[str]


@router.post("/uploads/sync", dependencies=[Depends(_json_keys_once)])
def sync_uploads(
    endpoint: str, body: SyncIn, site: Site = Depends(require_site), core: Core = Depends(get_core)
) -> dict[str, Any]:
    core.peer_files.sync(site.name, endpoint, body.uploads)
    return {"synced": len(body.uploads)}


class CommitIn(BaseModel):
    """Exactly these fields, of JSON's own types with nothing coerced (a ``size`` of
    ``"12"`` or ``12.0`` is not a whole number, a ``durable`` of ``1`` or ``"yes"`` is
    not a boolean); ``size`` null (or absent) is not checked; ``mtime`` (whole ns
    since 1970, not negative) null (or absent) sets no time."""

    model_config = ConfigDict(extra="forbid", strict=True)
    upload: str
    path: str
    size: int | None = Field(default=None, ge=0, le=MAX_FILE_SIZE)
    durable: bool = True
    mtime: int | None = Field(default=None, ge=0, le=MAX_MTIME_NS)


@router.post("/commit", dependencies=[Depends(_json_keys_once)])
def commit(
    endpoint: str,
    body: CommitIn,
    site: Site = Depends(require_site),
    core: Core = Depends(get_core),
) -> dict[str, Any]:
    entry = core.peer_files.commit(
        site.name, endpoint, body.upload, body.path, body.size, body.durable, body.mtime
    )
    return entry.document()


@router.delete("/files", status_code=204)
def delete(
    endpoint: str, path: str, site: Site = Depends(require_site), core: Core = Depends(get_core)
) -> None:
    core.peer_files.delete(site.name, endpoint, path)


@router.post("/folders", status_code=201)
def mkdir(
    endpoint: str, path: str, site: Site = Depends(require_site), core: Core = Depends(get_core)
) -> dict[str, Any]:
    return {"path": core.peer_files.mkdir(site.name, endpoint, path), "type": "directory"}
