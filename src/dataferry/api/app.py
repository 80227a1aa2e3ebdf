"""The ASGI application: routers, error mapping, and the core's lifecycle."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import Depends, FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

import dataferry
from dataferry.api import openapi, unrouted, web
from dataferry.api.auth import require_token
from dataferry.api.compat import pacifica
from dataferry.api.rest import (
    datasets,
    endpoints,
    health,
    jobs,
    peer,
    records,
    replication,
    schedules,
    sinks,
    sites,
    transactions,
    transfers,
)
from dataferry.api.rpc import jsonrpc, xmlrpc
from dataferry.api.unicode_bodies import UnicodeBodies
from dataferry.errors import DataferryError, InvalidRequest, refused_by_the_file_system

if TYPE_CHECKING:
    from dataferry.app import Core


# Error codes for the framework's own refusals (ours come from errors.DataferryError).
_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    422: "invalid",
}


def _sendable(message: str) -> str:
    """``message`` as UTF-8 can carry it. A refusal often quotes the caller's input,
    and JSON can carry a lone surrogate (``"\\ud800"``) that UTF-8 cannot: written
    escaped, instead of the answer failing (a 500 and a dropped connection)."""
    return message.encode("utf-8", "backslashreplace").decode("utf-8")


def create_app(core: Core, *, run_background: bool = True) -> FastAPI:
    """Build the app over ``core``; with ``run_background`` it starts and stops the
    executor and scheduler with the server."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if run_background:
            core.start()
        # Everything loaded so far (modules, the app, the core) lives as long as the
        # process: moved out of the collector's sight, so the full collections that
        # busy jobs set off walk only what they made, not the whole server. Garbage is
        # collected first: a frozen unreachable cycle would never be freed.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            if run_background:
                core.stop()

    app = FastAPI(
        title="dataferry",
        version=dataferry.__version__,
        description="Move and synchronise research data between institutions.",
        lifespan=lifespan,
    )
    app.state.core = core
    app.add_middleware(UnicodeBodies)

    @app.exception_handler(DataferryError)
    async def _dataferry_error(request: Request, exc: DataferryError) -> Response:
        message = _sendable(exc.message)
        if web.wants_html(request):
            return web.error_page(request, exc.status_code, message)
        headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
        return JSONResponse(
            {"error": exc.code, "detail": message}, status_code=exc.status_code, headers=headers
        )

    @app.exception_handler(OSError)
    async def _os_error(request: Request, exc: OSError) -> Response:
        # A storage error no service turned into ours. The ones that refuse the request
        # itself are the caller's (422); anything else stays a server error.
        if not refused_by_the_file_system(exc):
            raise exc
        return await _dataferry_error(request, InvalidRequest(exc.strerror or str(exc)))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'] if p != 'body')}: {e['msg']}" for e in exc.errors()
        )
        return JSONResponse({"error": "invalid", "detail": _sendable(problems)}, status_code=422)

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> Response:
        # Refusals of the framework itself: no such route (404), a method the route
        # has not (405), a body that is not text (400). In our shape, like the rest;
        # the first two say what was asked and what there is (see unrouted).
        detail, headers, page, heading = str(exc.detail), exc.headers, "", "Something went wrong"
        if isinstance(exc, unrouted.NoRoute):
            detail, page = unrouted.not_found(request), unrouted.page_not_found(request)
            heading = "Page not found"
        elif exc.status_code == 405:
            allowed = unrouted.allowed_methods(request, exc)
            detail = page = unrouted.not_allowed(request, allowed)
            headers = {**(headers or {}), "Allow": ", ".join(allowed)}
        if web.wants_html(request) and page:
            response = web.error_page(request, exc.status_code, _sendable(page), heading)
            response.headers.update(headers or {})
            return response
        if web.wants_html(request) or exc.status_code < 400:
            return await http_exception_handler(request, exc)
        return JSONResponse(
            {"error": _HTTP_CODES.get(exc.status_code, "error"), "detail": _sendable(detail)},
            status_code=exc.status_code,
            headers=headers,
        )

    app.include_router(health.router)
    # RPC doors check tokens themselves (they answer in their own error shapes).
    app.include_router(xmlrpc.router)
    app.include_router(jsonrpc.router)
    protected = [Depends(require_token)]
    for module in (
        jobs,
        endpoints,
        transfers,
        schedules,
        sites,
        records,
        replication,
        sinks,
        transactions,
    ):
        app.include_router(module.router, prefix="/api/v1", dependencies=protected)
    app.include_router(datasets.admin, prefix="/api/v1", dependencies=protected)
    # Peer routes check the calling site (and its token) themselves.
    app.include_router(datasets.peer, prefix="/api/v1")
    app.include_router(peer.hello_router, prefix="/api/v1")
    app.include_router(peer.router, prefix="/api/v1")
    app.include_router(pacifica.router)
    web.install(app, core)  # the dashboard at /
    openapi.install(app)
    unrouted.install(app)
    return app
