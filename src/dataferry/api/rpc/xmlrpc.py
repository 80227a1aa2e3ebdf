"""XML-RPC at ``/RPC2`` (alias ``/data_mover``): parsed with defusedxml (entity
expansion, DTDs and external entities are refused with a fault), then dispatched
to the RPC registry. ``system.listMethods``, ``system.methodHelp`` and
``system.methodSignature`` describe it."""

from __future__ import annotations

import xmlrpc.client
from typing import Any

from defusedxml import DefusedXmlException
from defusedxml.xmlrpc import DefusedExpatParser
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from dataferry.api.rpc.auth import rpc_authorized
from dataferry.api.rpc.registry import MethodNotFound, RpcRegistry
from dataferry.errors import DataferryError, InvalidRequest

MAX_BODY = 10 * 1024 * 1024

# Fault codes (the same numbers as JSON-RPC's standard errors where one fits).
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
SERVER_ERROR = -32000  # a DataferryError: faultString starts with its code

router = APIRouter(tags=["rpc"])

_I4 = (-(2**31), 2**31 - 1)


class _Marshaller(xmlrpc.client.Marshaller):
    """Integers past 32 bits (byte counts) go out as ``<i8>``, which Python's and
    most other clients read; the standard marshaller refuses them."""

    dispatch = dict(xmlrpc.client.Marshaller.dispatch)

    def dump_long(self, value: int, write: Any) -> None:
        if _I4[0] <= value <= _I4[1]:
            write(f"<value><int>{value}</int></value>\n")
        else:
            write(f"<value><i8>{value}</i8></value>\n")

    dispatch[int] = dump_long  # type: ignore[assignment]


def _parse(body: bytes) -> tuple[str, tuple[Any, ...]]:
    unmarshaller = xmlrpc.client.Unmarshaller(use_builtin_types=True)
    parser = DefusedExpatParser(unmarshaller, forbid_dtd=True)
    parser.feed(body)
    parser.close()
    params = unmarshaller.close()
    method = unmarshaller.getmethodname()
    if not method:
        raise ValueError("not an XML-RPC methodCall")
    return method, params


def _response(result: Any) -> bytes:
    m = _Marshaller("utf-8", allow_none=True)
    body = m.dumps((result,))
    return (
        "<?xml version='1.0'?>\n<methodResponse>\n<params>\n"
        + body
        + "</params>\n</methodResponse>\n"
    ).encode()


def _fault(code: int, message: str) -> bytes:
    return xmlrpc.client.dumps(xmlrpc.client.Fault(code, message), methodresponse=True).encode()


def _system(registry: RpcRegistry, method: str, params: tuple[Any, ...]) -> Any:
    if method == "system.listMethods":
        return [
            "system.listMethods",
            "system.methodHelp",
            "system.methodSignature",
            *registry.names(),
        ]
    if len(params) != 1 or not isinstance(params[0], str):
        raise InvalidRequest(f"{method} takes one method name")
    if params[0].startswith("system."):
        return "" if method == "system.methodHelp" else "signatures not supported"
    m = registry.get(params[0])
    return m.help if method == "system.methodHelp" else "signatures not supported"


def dispatch(registry: RpcRegistry, body: bytes) -> bytes:
    """One XML-RPC request body -> the response body (a result or a fault)."""
    try:
        method, params = _parse(body)
    except (DefusedXmlException, ValueError, xmlrpc.client.ResponseError) as exc:
        return _fault(PARSE_ERROR, f"parse error: {type(exc).__name__}: {exc}")
    except Exception as exc:  # expat errors, malformed values
        return _fault(PARSE_ERROR, f"parse error: {exc}")
    try:
        if method.startswith("system."):
            result = _system(registry, method, params)
        else:
            result = registry.call(method, list(params))
        return _response(result)
    except MethodNotFound as exc:
        return _fault(METHOD_NOT_FOUND, exc.message)
    except InvalidRequest as exc:
        return _fault(INVALID_PARAMS, f"{exc.code}: {exc.message}")
    except DataferryError as exc:
        return _fault(SERVER_ERROR, f"{exc.code}: {exc.message}")
    except Exception as exc:
        return _fault(INTERNAL_ERROR, f"internal error: {type(exc).__name__}")


async def _endpoint(request: Request) -> Response:
    core = request.app.state.core
    if not rpc_authorized(request):
        return Response(
            "unauthorized: a valid token is required",
            status_code=401,
            headers={"WWW-Authenticate": 'Basic realm="dataferry", Bearer'},
        )
    body = await request.body()
    if len(body) > MAX_BODY:
        content = _fault(INVALID_REQUEST, f"request body over {MAX_BODY} bytes")
    else:
        content = await run_in_threadpool(dispatch, core.rpc, body)
    return Response(content, media_type="text/xml")


router.add_api_route("/RPC2", _endpoint, methods=["POST"], include_in_schema=False)
router.add_api_route("/data_mover", _endpoint, methods=["POST"], include_in_schema=False)
