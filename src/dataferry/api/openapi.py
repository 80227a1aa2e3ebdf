"""The OpenAPI document: FastAPI's, with the error shape every refusal really has.

FastAPI documents a 422 of its own (``{"detail": [{"loc", "msg", "type"}]}``) on
each operation and no other refusal. Our handlers answer every refusal as
``{"error": code, "detail": message}`` (401, 403, 404, 409, 413, 422...), so each
operation documents that shape as its ``4XX`` answer instead. Pacifica's ingest
doors answer a refused bundle with Pacifica's state document: theirs allows both.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

ERROR_REF = "#/components/schemas/Error"

ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "properties": {
        "error": {
            "type": "string",
            "description": "unauthorized, forbidden, not_found, conflict, invalid, ...",
        },
        "detail": {"type": "string", "description": "what was wrong, in words"},
    },
    "required": ["error", "detail"],
}

# Doors that answer some refusals with Pacifica's state document instead.
_PACIFICA_STATE_DOORS = {"/upload", "/ingest", "/move"}
_PACIFICA_STATE: dict[str, Any] = {
    "type": "object",
    "properties": {"job_id": {}, "state": {"type": "string"}},
    "required": ["state"],
}
# Open doors that refuse nothing.
_NO_REFUSALS = {"/healthz", "/metrics"}
_METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


def install(app: FastAPI) -> None:
    """Serve the document with the refusals as they are."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = with_error_shape(build())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def with_error_shape(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` with FastAPI's 422 replaced by ``4XX``: :data:`ERROR_SCHEMA`."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas["Error"] = ERROR_SCHEMA
    error: dict[str, Any] = {"$ref": ERROR_REF}
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            if method not in _METHODS:
                continue
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            if path in _NO_REFUSALS:
                continue
            schema = {"anyOf": [error, _PACIFICA_STATE]} if path in _PACIFICA_STATE_DOORS else error
            responses["4XX"] = {
                "description": "Refused: what was wrong, and nothing changed",
                "content": {"application/json": {"schema": schema}},
            }
    return document
