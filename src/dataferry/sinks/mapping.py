"""Payload mapping: turns one change into the JSON document the partner expects.

Pure functions, no I/O. The default document is
``{"id", "status", "lastModified", "record": {...}}``. A mapping renames, selects
and nests fields and adds constants::

    {"fields": {"id": "id", "status": "status", "apiKey": "apiKey",
                "species": "record.scientific_name",
                "user": {"email": "record.user_email",
                         "isAdmin": {"from": "record.user_is_admin", "type": "bool"}},
                "source": {"const": "dataferry"}},
     "deleted": ["id", "status", "lastModified", "apiKey"]}

A value is a *path* (``id``, ``status``, ``lastModified``, ``apiKey``, ``record`` or
``record.<field>[.<field>...]``), ``{"const": value}``, ``{"from": path, "type":
"bool"|"int"|"float"|"str", "default": value}``, or an object of these (a nested
document). ``deleted`` lists the top-level fields a deletion sends (default: all).
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dataferry.errors import InvalidRequest

SPECIAL = ("id", "status", "lastModified", "apiKey", "record")
TYPES = ("bool", "int", "float", "str")


@dataclass(frozen=True, slots=True)
class Change:
    """One change to deliver, as the mapping sees it."""

    key: str
    status: str  # new | modified | deleted
    last_modified: str  # ISO 8601
    record: Mapping[str, Any]


def jsonable(value: Any) -> Any:
    """A database value as JSON: times as ISO 8601, decimals as numbers, bytes as base64."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [jsonable(v) for v in value]
    return str(value)


def _check_path(path: str, where: str) -> None:
    head = path.split(".", 1)[0]
    if head not in SPECIAL:
        raise InvalidRequest(
            f"mapping {where}: {path!r} is not a known value "
            f"(use one of {', '.join(SPECIAL)}, record.<field>, or {{'const': ...}})"
        )
    if head != "record" and "." in path:
        raise InvalidRequest(f"mapping {where}: {path!r}: only record.<field> has sub-fields")


def _check_value(value: Any, where: str) -> None:
    if isinstance(value, str):
        _check_path(value, where)
    elif isinstance(value, dict):
        if "const" in value:
            if len(value) != 1:
                raise InvalidRequest(f"mapping {where}: 'const' stands alone")
        elif "from" in value:
            extra = set(value) - {"from", "type", "default"}
            if extra:
                raise InvalidRequest(f"mapping {where}: unknown keys {sorted(extra)}")
            if not isinstance(value["from"], str):
                raise InvalidRequest(f"mapping {where}: 'from' must be a path")
            _check_path(value["from"], where)
            if value.get("type", "str") not in TYPES:
                raise InvalidRequest(f"mapping {where}: type must be one of {', '.join(TYPES)}")
        else:
            if not value:
                raise InvalidRequest(f"mapping {where}: an empty object maps nothing")
            for k, v in value.items():
                _check_value(v, f"{where}.{k}")
    else:
        raise InvalidRequest(
            f"mapping {where}: expected a path, {{'const': ...}}, {{'from': ...}} or an object"
        )


def validate(mapping: Mapping[str, Any] | None) -> None:
    """Raise :class:`InvalidRequest` naming the first bad entry of ``mapping``."""
    if mapping is None:
        return
    extra = set(mapping) - {"fields", "deleted"}
    if extra:
        raise InvalidRequest(f"mapping: unknown keys {sorted(extra)} (use 'fields', 'deleted')")
    fields = mapping.get("fields")
    if not isinstance(fields, dict) or not fields:
        raise InvalidRequest("mapping: 'fields' must be a non-empty object")
    for k, v in fields.items():
        _check_value(v, k)
    deleted = mapping.get("deleted")
    if deleted is not None:
        if not isinstance(deleted, list) or not all(isinstance(d, str) for d in deleted):
            raise InvalidRequest("mapping: 'deleted' must be a list of field names")
        unknown = [d for d in deleted if d not in fields]
        if unknown:
            raise InvalidRequest(f"mapping: 'deleted' names fields not in 'fields': {unknown}")


_MISSING = object()


def _resolve(path: str, change: Change, api_key: str) -> Any:
    head, _, rest = path.partition(".")
    if head == "id":
        return change.key
    if head == "status":
        return change.status
    if head == "lastModified":
        return change.last_modified
    if head == "apiKey":
        return api_key
    value: Any = change.record
    for part in rest.split(".") if rest else []:
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        else:
            return _MISSING
    return jsonable(value)


def _cast(value: Any, kind: str) -> Any:
    if value is None:
        return None
    if kind == "bool":
        if isinstance(value, str):
            return value.strip().lower() in ("1", "true", "yes", "y", "t", "on")
        return bool(value)
    if kind == "int":
        return int(value)
    if kind == "float":
        return float(value)
    return value if isinstance(value, str) else str(value)


def _value(spec: Any, change: Change, api_key: str) -> Any:
    if isinstance(spec, str):
        v = _resolve(spec, change, api_key)
        return None if v is _MISSING else v
    if "const" in spec:
        return spec["const"]
    if "from" in spec:
        v = _resolve(spec["from"], change, api_key)
        if v is _MISSING or v is None:
            return spec.get("default")
        try:
            return _cast(v, spec.get("type", "str"))
        except (TypeError, ValueError):
            return spec.get("default")
    return {k: _value(v, change, api_key) for k, v in spec.items()}


def document(
    change: Change, mapping: Mapping[str, Any] | None, api_key: str = ""
) -> dict[str, Any]:
    """The JSON document sent for ``change``."""
    if mapping is None:
        return {
            "id": change.key,
            "status": change.status,
            "lastModified": change.last_modified,
            "record": jsonable(change.record),
        }
    fields: dict[str, Any] = mapping["fields"]
    names = list(fields)
    if change.status == "deleted" and mapping.get("deleted") is not None:
        names = list(mapping["deleted"])
    return {name: _value(fields[name], change, api_key) for name in names}
