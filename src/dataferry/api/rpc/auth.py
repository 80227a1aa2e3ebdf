"""Tokens on the RPC doors: ``Authorization: Bearer TOKEN``, or HTTP Basic with the
token as password (``ServerProxy('http://user:TOKEN@host:port/RPC2')``) for
clients that cannot set headers."""

from __future__ import annotations

import base64
import binascii

from fastapi import Request

from dataferry.api.auth import bearer, token_ok


def presented_token(request: Request) -> str:
    token = bearer(request)
    if token:
        return token
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return ""
    try:
        user, _, password = base64.b64decode(value.strip()).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return ""
    return password or user


def rpc_authorized(request: Request) -> bool:
    tokens: list[str] = request.app.state.core.settings.tokens
    if not tokens:
        return True
    presented = presented_token(request)
    return bool(presented) and token_ok(tokens, presented)
