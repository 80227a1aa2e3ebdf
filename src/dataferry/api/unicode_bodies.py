"""JSON request bodies whose text is not Unicode are refused before any door reads them.

A JSON body may spell a lone surrogate (``"\\ud800"``); FastAPI's parser and the
JSON-RPC door read it into a ``str`` that no database, file name or answer can
hold, so endpoints, sites, peers, datasets and records were stored half-usable
behind a 500. The rule is :func:`dataferry.text.check_unicode`; this middleware
applies it to every ``application/json`` body (the only bodies read whole anyway:
uploads stream past untouched). A body that only looks like it holds one (an escaped
backslash before ``ud800``) is parsed to decide.
"""

from __future__ import annotations

import json

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dataferry.errors import InvalidRequest
from dataferry.text import SURROGATE_ESCAPE, check_unicode

# Doors that answer in their own error shape and apply the rule themselves.
_OWN_ERRORS = {"/jsonrpc"}


def _is_json(scope: Scope) -> bool:
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            kind: bytes = value.split(b";", 1)[0].strip().lower()
            return kind == b"application/json" or kind.endswith(b"+json")
    return False


class UnicodeBodies:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in _OWN_ERRORS or not _is_json(scope):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                await self.app(scope, _replay(message, receive), send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if SURROGATE_ESCAPE.search(body):
            try:
                check_unicode(json.loads(body), "the body")
            except InvalidRequest as exc:
                answer = JSONResponse({"error": exc.code, "detail": exc.message}, 422)
                await answer(scope, receive, send)
                return
            except (ValueError, RecursionError):
                pass  # not JSON (or too deep to read): the door that reads it says so
        done: Message = {"type": "http.request", "body": body, "more_body": False}
        await self.app(scope, _replay(done, receive), send)


def _replay(first: Message, receive: Receive) -> Receive:
    """``first`` once, then whatever ``receive`` gives (a disconnect)."""
    given = False

    async def replay() -> Message:
        nonlocal given
        if not given:
            given = True
            return first
        return await receive()

    return replay
