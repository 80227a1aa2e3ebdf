"""The ASGI application: routers, error mapping, and the core's lifecycle."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

import dataferry
from dataferry.api import openapi, web
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
    sinks,
    sites,
    transactions,
    transfers,
)
from dataferry.api.rpc import jsonrpc, xmlrpc
from dataferry.errors import DataferryError, InvalidRequest, refused_by_the_file_system

if TYPE_CHECKING:
    from dataferry.app import Core


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

    @app.exception_handler(DataferryError)
    async def _dataferry_error(request: Request, exc: DataferryError) -> Response:
        if web.wants_html(request):
            return web.error_page(request, exc.status_code, exc.message)
        headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
        return JSONResponse(
            {"error": exc.code, "detail": exc.message}, status_code=exc.status_code, headers=headers
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
        return JSONResponse({"error": "invalid", "detail": problems}, status_code=422)

    app.include_router(health.router)
    # RPC doors check tokens themselves (they answer in their own error shapes).
    app.include_router(xmlrpc.router)
    app.include_router(jsonrpc.router)
    protected = [Depends(require_token)]
    for module in (jobs, endpoints, transfers, sites, records, replication, sinks, transactions):
        app.include_router(module.router, prefix="/api/v1", dependencies=protected)
    app.include_router(datasets.admin, prefix="/api/v1", dependencies=protected)
    # Peer routes check the calling site (and its token) themselves.
    app.include_router(datasets.peer, prefix="/api/v1")
    app.include_router(peer.router, prefix="/api/v1")
    app.include_router(pacifica.router)
    web.install(app, core)  # the dashboard at /
    openapi.install(app)
    return app
