"""JSON-RPC 2.0 at ``/jsonrpc``: single calls, batches and notifications over the
RPC registry, with the standard error codes:

- ``-32700`` parse error, ``-32600`` invalid request, ``-32601`` method not found,
  ``-32602`` invalid params (and any rejected input), ``-32603`` internal error;
- ``-32000`` any other dataferry error, with ``data: {"error": code}``
  (e.g. ``not_found``, ``conflict``, ``transient``).
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from dataferry.api.rpc.auth import rpc_authorized
from dataferry.api.rpc.registry import MethodNotFound, RpcRegistry
from dataferry.errors import DataferryError, InvalidRequest
from dataferry.text import lone_surrogate_in

MAX_BODY = 10 * 1024 * 1024
MAX_BATCH = 1000

router = APIRouter(tags=["rpc"])


def _error(id_: Any, code: int, message: str, data: Any = None) -> dict[str, Any]:
    err: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        err["data"] = data
    return {"jsonrpc": "2.0", "error": err, "id": id_}


def _one(registry: RpcRegistry, call: Any) -> dict[str, Any] | None:
    """Answer one call object; None for a (valid) notification."""
    if not isinstance(call, dict) or call.get("jsonrpc") != "2.0":
        return _error(None, -32600, "invalid request: not a JSON-RPC 2.0 call object")
    notification = "id" not in call
    id_ = call.get("id")
    if not (id_ is None or isinstance(id_, (str, int, float))) or isinstance(id_, bool):
        return _error(None, -32600, "invalid request: id must be a string, number or null")
    method = call.get("method")
    params = call.get("params", [])
    if not isinstance(method, str) or not isinstance(params, (list, dict)):
        return _error(
            id_, -32600, "invalid request: method must be a string, params a list or object"
        )
    try:
        result = registry.call(method, params)
        out: dict[str, Any] | None = {"jsonrpc": "2.0", "result": result, "id": id_}
    except MethodNotFound as exc:
        out = _error(id_, -32601, exc.message)
    except InvalidRequest as exc:
        out = _error(id_, -32602, exc.message, {"error": exc.code})
    except DataferryError as exc:
        out = _error(id_, -32000, exc.message, {"error": exc.code})
    except Exception as exc:
        out = _error(id_, -32603, f"internal error: {type(exc).__name__}")
    return None if notification else out


def dispatch(registry: RpcRegistry, body: bytes) -> Any:
    """A request body -> the response document (None: nothing to send back)."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        return _error(None, -32700, f"parse error: {exc}")
    except RecursionError:
        return _error(None, -32700, "parse error: the JSON text is nested too deeply")
    bad = lone_surrogate_in(body, doc)
    if bad is not None:  # see dataferry.text: no door may take it in
        return _error(None, -32700, f"parse error: {bad[:60]!r} holds a lone surrogate")
    if isinstance(doc, list):
        if not doc:
            return _error(None, -32600, "invalid request: empty batch")
        if len(doc) > MAX_BATCH:
            return _error(None, -32600, f"invalid request: batch over {MAX_BATCH} calls")
        answers = [a for a in (_one(registry, c) for c in doc) if a is not None]
        return answers or None
    return _one(registry, doc)


@router.post("/jsonrpc", include_in_schema=False)
async def jsonrpc(request: Request) -> Response:
    if not rpc_authorized(request):
        return JSONResponse(
            _error(None, -32001, "unauthorized: a valid token is required"), status_code=401
        )
    body = await request.body()
    if len(body) > MAX_BODY:
        return JSONResponse(_error(None, -32600, f"request body over {MAX_BODY} bytes"))
    out = await run_in_threadpool(dispatch, request.app.state.core.rpc, body)
    if out is None:
        return Response(status_code=204)
    return JSONResponse(out)
