"""Requests no route serves: a 404 that names the method and the path and says where
the API is described, and a 405 that names every method the path takes.

Starlette answers both with its bare status phrase ("Not Found", "Method Not
Allowed"), which tells a caller with a typo nothing; and its 405 lists only the
methods of the first route on the path (``Allow: GET`` for
``/api/v1/endpoints/{name}``, which DELETE serves too)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from starlette.exceptions import HTTPException
from starlette.routing import Match, Mount
from starlette.types import Receive, Scope, Send

from dataferry.text import cut

# Longer paths are shown cut: the message names the path, it need not carry all of it.
_PATH_SHOWN = 200
# The methods a 405 looks for, and what routing reads of a request.
_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")
_ROUTING_KEYS = ("type", "app", "path", "raw_path", "root_path")


class NoRoute(HTTPException):
    """Nothing serves this path: no route matched it, or no static file is there.
    A route's own 404s (no such job) are :class:`dataferry.errors.NotFound`."""

    def __init__(self) -> None:
        super().__init__(status_code=404)


def install(app: FastAPI) -> None:
    """Make the router raise :class:`NoRoute` for an HTTP request no route matches."""
    fallback = app.router.default

    async def no_route(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await fallback(scope, receive, send)  # a websocket: closed, as before
            return
        raise NoRoute()

    app.router.default = no_route


def shown_path(request: Request) -> str:
    """The path as the caller sent it (``..%2Fx`` stays so, as in their URL), without
    the query."""
    raw = request.scope.get("raw_path")
    path = raw.decode("utf-8", "backslashreplace") if isinstance(raw, bytes) else ""
    return cut(path or request.url.path, _PATH_SHOWN)


def not_found(request: Request) -> str:
    method, path = request.method, shown_path(request)
    if request.url.path.startswith("/api/"):
        return f"no such API path: {method} {path} (see /docs)"
    return f"no such path: {method} {path} (the API is under /api/v1, see /docs)"


def page_not_found(request: Request) -> str:
    """For a browser: the dashboard's error page says which page is not there."""
    return f"no such page: {shown_path(request)}"


def allowed_methods(request: Request, exc: HTTPException) -> list[str]:
    """Every method some route serves this path with: each method asked of the app's
    routes in a fresh scope (FastAPI nests included routers, so their routes are not
    a flat list to read), plus the ``Allow`` the refusal sent. A mount (the static
    files) takes every path below it whatever the method: its own ``Allow`` says."""
    methods = {m.strip() for m in (exc.headers or {}).get("Allow", "").split(",") if m.strip()}
    scope = request.scope
    for method in _METHODS:
        probe: Scope = {key: scope[key] for key in _ROUTING_KEYS if key in scope}
        probe["method"] = method
        for route in request.app.router.routes:
            if not isinstance(route, Mount) and route.matches(probe)[0] is Match.FULL:
                methods.add(method)
                break
    return sorted(methods)


def not_allowed(request: Request, allowed: list[str]) -> str:
    takes = ", ".join(allowed) or "no method"
    return f"method {request.method} is not allowed on {shown_path(request)}; it takes {takes}"
