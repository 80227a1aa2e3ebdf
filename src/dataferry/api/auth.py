"""Bearer-token check for ``/api/v1`` and the RPC doors."""

from __future__ import annotations

import hmac

from fastapi import Request

from dataferry.errors import Unauthorized


def token_ok(configured: list[str], presented: str) -> bool:
    # compare_digest against every token: the time taken does not tell which matched.
    ok = False
    for token in configured:
        ok |= hmac.compare_digest(token.encode(), presented.encode())
    return ok


def bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


def require_token(request: Request) -> None:
    """FastAPI dependency: with tokens configured, a matching bearer token is required."""
    tokens: list[str] = request.app.state.core.settings.tokens
    if not tokens:
        return
    presented = bearer(request)
    if not presented:
        from dataferry.api.web.guard import rest_cookie_ok

        if rest_cookie_ok(request):  # the dashboard's own script, logged in
            return
        raise Unauthorized("missing bearer token (Authorization: Bearer ...)")
    if not token_ok(tokens, presented):
        raise Unauthorized("invalid token")
