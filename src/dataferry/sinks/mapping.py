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

A document that cannot be built for a record raises :class:`DocumentError` naming the
field: a ``float`` cast giving NaN or an infinity (JSON has neither), an ``int`` cast of
NaN or an infinity, a number too large to convert. Retrying cannot help, so the engine
makes such a change a dead letter at once. A value that is not a number at all (``int``
of ``"abc"``) still gives the ``default``.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dataferry.errors import InvalidRequest, PermanentError
from dataferry.text import cut

SPECIAL = ("id", "status", "lastModified", "apiKey", "record")
TYPES = ("bool", "int", "float", "str")
# Integers with more digits than this are refused by Python's int -> str conversion
# (sys.int_info.default_max_str_digits), so json.dumps cannot write them.
MAX_DIGITS = 4300
# What float() reads as NaN or an infinity, lower-cased and without a sign.
NOT_FINITE = frozenset({"nan", "inf", "infinity"})


class DocumentError(PermanentError):
    """The document of one change cannot be built (the message names the field);
    sending it again would fail the same way."""


@dataclass(frozen=True, slots=True)
class Change:
    """One change to deliver, as the mapping sees it."""

    key: str
    status: str  # new | modified | deleted
    last_modified: str  # ISO 8601
    record: Mapping[str, Any]


def _not_finite(value: float | decimal.Decimal) -> str:
    """NaN or an infinity as text: ``"NaN"``, ``"Infinity"`` or ``"-Infinity"``."""
    if value != value:  # NaN (a signalling decimal NaN never gets here)
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def jsonable(value: Any) -> Any:
    """A database value as JSON: times as ISO 8601, decimals as numbers, bytes as base64.

    JSON has no NaN or infinity (and the outbox's JSON column on PostgreSQL refuses
    them): those become the strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"``. A
    decimal too large for an integer JSON can carry becomes its text."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else _not_finite(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        if value.is_snan():
            return "NaN"
        if not value.is_finite():
            return _not_finite(value)
        if value != value.to_integral_value():
            return float(value)
        if value.adjusted() >= MAX_DIGITS - 1:
            return str(value)
        return int(value)
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


def _finite(value: Any) -> bool:
    """True if ``value`` holds no NaN or infinity (Python's JSON parser reads them)."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    if isinstance(value, list):
        return all(_finite(v) for v in value)
    return True


def _check_value(value: Any, where: str) -> None:
    if isinstance(value, str):
        _check_path(value, where)
    elif isinstance(value, dict):
        if not _finite(value.get("const")) or not _finite(value.get("default")):
            raise InvalidRequest(f"mapping {where}: NaN and Infinity are not JSON numbers")
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


def _cast(value: Any, kind: str, where: str, path: str) -> Any:
    """``value`` (read from ``path``) as ``kind``. ValueError or TypeError: not a value
    of that kind (the default applies); DocumentError: a number JSON cannot carry."""
    if value is None:
        return None
    if kind == "bool":
        if isinstance(value, str):
            return value.strip().lower() in ("1", "true", "yes", "y", "t", "on")
        return bool(value)
    if kind == "int":
        text = value.strip().lower().lstrip("+-") if isinstance(value, str) else ""
        if (isinstance(value, float) and not math.isfinite(value)) or text in NOT_FINITE:
            raise DocumentError(
                f"field {where!r}: {path} is {_shown(value)}, which is not an integer"
            )
        return int(value)
    if kind == "float":
        try:
            number = float(value)
        except OverflowError:
            raise DocumentError(
                f"field {where!r}: {path} is a number too large for a float"
            ) from None
        if not math.isfinite(number):
            raise DocumentError(
                f"field {where!r}: {path} is {_shown(value)} as a float,"
                " and JSON has no NaN or Infinity"
            )
        return number
    return value if isinstance(value, str) else str(value)


def _shown(value: Any) -> str:
    return cut(repr(value) if isinstance(value, str) else str(value))


def _value(spec: Any, change: Change, api_key: str, where: str) -> Any:
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
            return _cast(v, spec.get("type", "str"), where, spec["from"])
        except (TypeError, ValueError):
            return spec.get("default")
    return {k: _value(v, change, api_key, f"{where}.{k}") for k, v in spec.items()}


def _check_document(value: Any, where: str) -> None:
    """Refuse what JSON cannot carry: NaN, infinities, integers too long to write."""
    if isinstance(value, float) and not math.isfinite(value):
        raise DocumentError(f"field {where!r} is {value}, and JSON has no NaN or Infinity")
    if isinstance(value, int) and value.bit_length() > 3 * MAX_DIGITS:
        try:
            str(value)
        except ValueError:
            raise DocumentError(
                f"field {where!r}: the number has more than {MAX_DIGITS} digits"
            ) from None
    elif isinstance(value, Mapping):
        for k, v in value.items():
            _check_document(v, f"{where}.{k}")
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            _check_document(v, f"{where}[{i}]")


def document(
    change: Change, mapping: Mapping[str, Any] | None, api_key: str = ""
) -> dict[str, Any]:
    """The JSON document sent for ``change``; :class:`DocumentError` (naming the field)
    if it cannot be built for this record."""
    if mapping is None:
        doc = {
            "id": change.key,
            "status": change.status,
            "lastModified": change.last_modified,
            "record": jsonable(change.record),
        }
    else:
        fields: dict[str, Any] = mapping["fields"]
        names = list(fields)
        if change.status == "deleted" and mapping.get("deleted") is not None:
            names = list(mapping["deleted"])
        doc = {name: _value(fields[name], change, api_key, name) for name in names}
    for name, value in doc.items():
        _check_document(value, name)
    return doc
