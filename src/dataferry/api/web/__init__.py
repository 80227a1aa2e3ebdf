"""The web dashboard: server-rendered pages (Jinja2) plus a small script of our own
for live updates. Pages call the same service layer as the REST API; the script
reads the REST API with the session cookie."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.types import Scope

from dataferry.api.unrouted import NoRoute
from dataferry.api.web import (
    datasets,
    endpoints,
    ingest,
    jobs,
    login,
    replication,
    schedules,
    sinks,
    transfers,
)
from dataferry.api.web.guard import (
    HERE,
    SECURITY_HEADERS,
    LoginRequired,
    error_page,
    login_redirect,
    make_codec,
    wants_html,
)

if TYPE_CHECKING:
    from dataferry.app import Core

CORE_PAGES = [
    ("/", "Jobs"),
    ("/transfers/new", "New transfer"),
    ("/schedules", "Schedules"),
    ("/endpoints", "Endpoints"),
]


class _Static(StaticFiles):
    async def get_response(self, path: str, scope: Scope) -> Response:
        try:
            response = await super().get_response(path, scope)
        except HTTPException as exc:
            if exc.status_code == 404:  # no such file: a path nothing serves
                raise NoRoute() from None
            raise
        response.headers.update(SECURITY_HEADERS)
        response.headers["Cache-Control"] = "no-cache"
        return response


def install(app: FastAPI, core: Core) -> None:
    app.state.web_codec = make_codec(core)

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, exc: LoginRequired) -> Response:
        return login_redirect(request, exc)

    nav = list(CORE_PAGES)
    for module in (login, jobs, transfers, schedules, endpoints):
        app.include_router(module.router)
    # each capability's page, when that capability is installed in this core
    if hasattr(core, "ingest"):
        app.include_router(ingest.router)
        nav.append(("/ingest", "Ingest"))
    if hasattr(core, "peers") and hasattr(core, "records"):
        app.include_router(replication.router)
        nav.append(("/replication", "Replication"))
    if hasattr(core, "consumer") and hasattr(core, "provider"):
        app.include_router(datasets.router)
        nav.append(("/datasets", "Datasets"))
    if hasattr(core, "sinks"):
        app.include_router(sinks.router)
        nav.append(("/sinks", "Sinks"))
    app.state.web_nav = nav
    app.mount("/static", _Static(directory=HERE / "static"), name="static")


__all__ = ["error_page", "install", "wants_html"]
