"""Token login and logout. Only needed when tokens are configured."""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from dataferry.api.auth import token_ok
from dataferry.api.web.guard import (
    check_csrf,
    codec_of,
    cookie_session,
    core_of,
    issue,
    redirect,
    render,
)
from dataferry.api.web.session import fingerprint
from dataferry.errors import Forbidden

router = APIRouter(include_in_schema=False)


def _safe_next(target: str) -> str:
    # only a path on this site: never an open redirect to another host
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@router.get("/login")
def login_page(request: Request, next: str = "/") -> Response:
    session = cookie_session(request)
    if session is None:
        session = issue(request, codec_of(request).new())
    else:
        request.state.session = session
    return render(request, "login.html", next=_safe_next(next), error="")


@router.post("/login")
def login(
    request: Request, token: str = Form(""), csrf: str = Form(""), next: str = Form("/")
) -> Response:
    raw = request.cookies.get("dataferry_session", "")
    pre = codec_of(request).decode(raw) if raw else None
    if pre is None:
        raise Forbidden("no session; reload the login page and try again")
    check_csrf(request, pre, csrf)
    tokens = core_of(request).settings.tokens
    if not tokens:
        return redirect(request, _safe_next(next))
    if not token or not token_ok(tokens, token):
        request.state.session = pre
        return render(
            request, "login.html", status_code=401, next=_safe_next(next), error="invalid token"
        )
    # a fresh session (new nonce) on login: a session planted before cannot be reused
    issue(request, codec_of(request).new(fingerprint(token)))
    return redirect(request, _safe_next(next))


@router.post("/logout")
def logout(request: Request, csrf: str = Form("")) -> Response:
    session = cookie_session(request)
    if session is not None:
        check_csrf(request, session, csrf)
    issue(request, codec_of(request).new())
    return redirect(request, "/login" if core_of(request).settings.tokens else "/")
