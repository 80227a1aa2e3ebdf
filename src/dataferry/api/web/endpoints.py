"""Endpoints: list, add, remove, browse. Secrets are write-only: never rendered back."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from dataferry.api.web.guard import acting, core_of, redirect, render, viewer
from dataferry.endpoints import browse
from dataferry.errors import DataferryError, InvalidRequest

router = APIRouter(include_in_schema=False)

SECRET_ROWS = 3  # name/value pairs offered by the form
PAGE = 200  # entries per page of a folder


def parse_options(text: str) -> dict[str, str]:
    """``key=value`` per line (blank lines ignored)."""
    options: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise InvalidRequest(f"options line {n}: expected key=value, got {line!r}")
        options[key.strip()] = value.strip()
    return options


def _page(request: Request, status_code: int = 200, error: str = "", **values: str) -> Response:
    return render(
        request,
        "endpoints.html",
        status_code=status_code,
        endpoints=[e.document() for e in core_of(request).endpoints.list()],
        error=error,
        notice=request.query_params.get("notice", ""),
        secret_rows=range(SECRET_ROWS),
        v=values,
    )


@router.get("/endpoints")
def endpoints_page(request: Request) -> Response:
    viewer(request)
    return _page(request)


@router.post("/endpoints")
def add_endpoint(
    request: Request,
    csrf: str = Form(""),
    name: str = Form(""),
    url: str = Form(""),
    options: str = Form(""),
    secret_name_0: str = Form(""),
    secret_value_0: str = Form(""),
    secret_name_1: str = Form(""),
    secret_value_1: str = Form(""),
    secret_name_2: str = Form(""),
    secret_value_2: str = Form(""),
) -> Response:
    acting(request, csrf)
    # What was typed comes back on error, except secret values: those fields stay empty.
    values = {"name": name.strip(), "url": url.strip(), "options": options}
    pairs = [
        (secret_name_0, secret_value_0),
        (secret_name_1, secret_value_1),
        (secret_name_2, secret_value_2),
    ]
    try:
        secrets: dict[str, str] = {}
        for i, (key, value) in enumerate(pairs, 1):
            if value and not key.strip():
                raise InvalidRequest(f"secret {i} has a value but no name")
            if key.strip() and value:
                secrets[key.strip()] = value
        core_of(request).endpoints.add(
            values["name"], values["url"], parse_options(options), secrets
        )
    except DataferryError as exc:
        return _page(request, exc.status_code, exc.message, **values)
    return redirect(request, "/endpoints?" + urlencode({"notice": f"endpoint {name} added"}))


@router.post("/endpoints/{name}/delete")
def remove_endpoint(request: Request, name: str, csrf: str = Form("")) -> Response:
    acting(request, csrf)
    try:
        core_of(request).endpoints.remove(name)
    except DataferryError as exc:
        return _page(request, exc.status_code, exc.message)
    return redirect(request, "/endpoints?" + urlencode({"notice": f"endpoint {name} removed"}))


def _crumbs(path: str) -> list[tuple[str, str]]:
    """(name, path) of each folder from the root down to ``path``."""
    parts = [p for p in path.split("/") if p]
    return [(part, "/".join(parts[: i + 1])) for i, part in enumerate(parts)]


@router.get("/endpoints/{name}/files")
def files_page(request: Request, name: str, path: str = "", offset: str = "0") -> Response:
    viewer(request)
    try:
        if not (offset.isascii() and offset.isdigit()):
            raise InvalidRequest(f"offset must be a whole number from 0, not {offset!r}")
        listing = browse.listing(core_of(request).endpoints, name, path, False, PAGE, int(offset))
    except DataferryError as exc:
        return render(request, "error.html", status_code=exc.status_code, message=exc.message)
    return render(
        request,
        "endpoint_files.html",
        endpoint=name,
        listing=listing,
        crumbs=_crumbs(listing.path),
        parent=listing.path.rpartition("/")[0],
        page=PAGE,
    )
