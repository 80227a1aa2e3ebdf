"""Per request: who is looking (session cookie), CSRF checks, and page rendering.

Every check happens on the server: a page or action without a valid session is
refused whatever the browser shows."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from dataferry.api.web import format as fmt
from dataferry.api.web.session import COOKIE, CSRF_HEADER, Session, SessionCodec, fingerprint
from dataferry.errors import Forbidden

if TYPE_CHECKING:
    from dataferry.app import Core

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
templates.env.filters.update(
    bytes=fmt.human_bytes,
    duration=fmt.human_duration,
    utc_time=fmt.utc_time,
    utc=fmt.utc_moment,
)

# Nothing from elsewhere: scripts, styles, images, fonts and requests stay on this origin.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; "
        "base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class LoginRequired(Exception):
    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


def core_of(request: Request) -> Core:
    c: Core = request.app.state.core
    return c


def codec_of(request: Request) -> SessionCodec:
    codec: SessionCodec = request.app.state.web_codec
    return codec


def make_codec(core: Core) -> SessionCodec:
    return SessionCodec(
        core.box.derive("dataferry dashboard session v1"), core.settings.web.session_hours * 3600
    )


def tokens_required(request: Request) -> bool:
    return bool(core_of(request).settings.tokens)


def cookie_session(request: Request) -> Session | None:
    """The request's valid session, or None. With tokens configured only a session
    from a token login that is still configured counts."""
    raw = request.cookies.get(COOKIE, "")
    session = codec_of(request).decode(raw) if raw else None
    if session is None:
        return None
    tokens = core_of(request).settings.tokens
    if tokens and session.token not in {fingerprint(t) for t in tokens}:
        return None
    return session


def viewer(request: Request) -> Session:
    """The session of a dashboard page; anonymous ones are issued when no token is set."""
    session = cookie_session(request)
    if session is not None:
        request.state.session = session
        return session
    if tokens_required(request):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(target)
    return issue(request, codec_of(request).new())


def issue(request: Request, session: Session) -> Session:
    """Use ``session`` for this request and send its cookie with the response."""
    request.state.session = session
    request.state.set_session = session
    return session


def same_origin(request: Request) -> bool:
    origin = request.headers.get("origin") or request.headers.get("referer")
    if not origin or origin == "null":
        # browsers always send Origin on a cross-site POST; without it the CSRF token decides
        return origin is None
    return urlsplit(origin).netloc == request.headers.get("host", "")


def check_csrf(request: Request, session: Session, presented: str) -> None:
    """Refuse a state-changing request that does not carry this session's CSRF token."""
    if not same_origin(request):
        raise Forbidden("cross-site request refused")
    presented = presented or request.headers.get(CSRF_HEADER, "")
    if not codec_of(request).csrf_ok(session, presented):
        raise Forbidden("missing or wrong CSRF token; reload the page and try again")


def acting(request: Request, csrf: str) -> Session:
    """The session of a state-changing dashboard request, CSRF-checked."""
    session = cookie_session(request)
    if session is None:
        if tokens_required(request):
            raise LoginRequired(request.url.path)
        raise Forbidden("no session; reload the page and try again")
    check_csrf(request, session, csrf)
    request.state.session = session
    return session


def rest_cookie_ok(request: Request) -> bool:
    """For ``/api/v1``: a logged-in browser may call the API with its cookie; writes
    need the CSRF header too (the page's script sends it)."""
    session = cookie_session(request)
    if session is None or not session.authenticated:
        return False
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        check_csrf(request, session, "")
    return True


def finish(request: Request, response: Response) -> Response:
    new: Session | None = getattr(request.state, "set_session", None)
    if new is not None:
        settings = core_of(request).settings.web
        response.set_cookie(
            COOKIE,
            codec_of(request).encode(new),
            max_age=int(settings.session_hours * 3600),
            path="/",
            secure=settings.secure_cookie,
            httponly=True,
            samesite="strict",
        )
    response.headers.update(SECURITY_HEADERS)
    return response


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> Response:
    session: Session | None = getattr(request.state, "session", None)
    core = core_of(request)
    context.update(
        csrf=codec_of(request).csrf(session) if session else "",
        logged_in=bool(session and session.authenticated),
        tokens_required=bool(core.settings.tokens),
        nav=getattr(request.app.state, "web_nav", []),
        path=request.url.path,
        poll_ms=int(core.settings.web.poll_seconds * 1000),
        now=datetime.now(UTC),
    )
    response: HTMLResponse = templates.TemplateResponse(
        request, name, context, status_code=status_code
    )
    return finish(request, response)


def redirect(request: Request, url: str) -> Response:
    return finish(request, RedirectResponse(url, status_code=303))


def login_redirect(request: Request, exc: LoginRequired) -> Response:
    return finish(request, RedirectResponse(f"/login?next={quote(exc.next_url)}", status_code=303))


def wants_html(request: Request) -> bool:
    """A browser asking for a dashboard page (not an API client)."""
    path = request.url.path
    return not path.startswith(("/api/", "/static/")) and "text/html" in request.headers.get(
        "accept", ""
    )


def error_page(
    request: Request, status_code: int, message: str, heading: str = "Something went wrong"
) -> Response:
    if not hasattr(request.state, "session"):
        request.state.session = cookie_session(request)
    return render(request, "error.html", status_code=status_code, message=message, heading=heading)
