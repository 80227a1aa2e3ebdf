"""Value objects of the records capability, and the JSON helpers they share."""

from __future__ import annotations

import json
import math
import re
import uuid as uuidlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeGuard

import orjson

from dataferry.errors import InvalidRequest
from dataferry.records import hlc
from dataferry.text import lone_surrogate_in

COLLECTION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")

# How deep a record's document (or a collection's schema) may nest, counting the
# top-level object as 1. Deeper values would overflow the recursion of the code that
# encodes, validates and serves them (a few hundred levels is enough for that).
MAX_DEPTH = 100


def dumps(obj: Any) -> str:
    try:
        return orjson.dumps(obj).decode()
    except TypeError:  # e.g. integers beyond 64 bits: the standard library copes
        return json.dumps(obj, separators=(",", ":"))


# Every ASCII digit becomes "0", every other byte " ": a run of 19 zeros in the
# translation is a run of 19 digits in the text.
_DIGITS_ONLY = bytes(0x30 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))
_LONG_DIGIT_RUN = b"0" * 19


def _not_a_number(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def loads(text: str | bytes, *, finite: bool = False) -> Any:
    """Decode JSON exactly. orjson reads an integer beyond 64 bits as a float (it
    would come back as 1e+23), so a text with a run of 19 or more digits, where such
    an integer can be, goes to the standard library; the scan costs about a third of
    orjson's own time. ``finite``: NaN and Infinity, which the standard library
    reads (orjson does not), are a ValueError too."""
    data = text.encode() if isinstance(text, str) else text
    if _LONG_DIGIT_RUN not in data.translate(_DIGITS_ONLY):
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass  # the standard library's message says what is wrong
    try:
        value = json.loads(data, parse_constant=_not_a_number if finite else None)
    except RecursionError:  # a ValueError like any other malformed text
        raise ValueError("the JSON text is nested too deeply to read") from None
    # orjson refuses a lone surrogate ("\\ud800"); the standard library reads it into
    # a str that could be stored but never written out again (dataferry.text)
    bad = lone_surrogate_in(data, value)
    if bad is not None:
        raise ValueError(f"{bad[:60]!r} holds a lone surrogate, which is not Unicode text")
    return value


def check_json(value: Any, what: str) -> None:
    """Refuse ``value`` if its objects and lists nest deeper than ``MAX_DEPTH``, if it
    holds a number JSON has not got (NaN, Infinity: Python's parsers read them, and
    they were stored as null), or any other value JSON has not got (XML-RPC's bytes
    and datetimes). Walked without recursion, so any depth is measured."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        elif isinstance(item, float) and not math.isfinite(item):
            raise InvalidRequest(f"{what} holds {item!r}: JSON numbers are finite")
        elif item is None or isinstance(item, str | int | float):
            continue
        else:  # e.g. XML-RPC's <base64> (bytes) and <dateTime.iso8601> (datetime)
            raise InvalidRequest(
                f"{what} holds a {type(item).__name__} value, which JSON has not got"
            )
        if depth > MAX_DEPTH:
            raise InvalidRequest(f"{what} nests deeper than {MAX_DEPTH} levels")
        stack.extend((child, depth + 1) for child in children)


def may_nest_too_deep(text: str) -> bool:
    """Whether JSON ``text`` has more brackets than ``MAX_DEPTH``: only then can it nest
    too deeply, so a hot path walks (:func:`check_json`) only such values. It cannot
    see NaN, which :func:`dumps` writes as null: parse with ``loads(finite=True)``."""
    return text.count("{") + text.count("[") > MAX_DEPTH


# An instance id, as a change's origin (and each of its stamps) carries it.
MAX_ORIGIN = 64


def is_origin(value: Any) -> TypeGuard[str]:
    """Whether ``value`` can be an instance id: 1-64 printable characters (no
    newline, tab, NUL or other control or format character)."""
    return type(value) is str and 0 < len(value) <= MAX_ORIGIN and value.isprintable()


def check_origin(value: Any, what: str = "origin") -> str:
    """``value`` if it can be an instance id (:func:`is_origin`), or a clear error:
    the one rule for a replicated change's origin and an imported row's."""
    if not is_origin(value):
        raise InvalidRequest(
            f"{what} must be an instance id, 1-{MAX_ORIGIN} printable characters, not {value!r:.80}"
        )
    return value


def check_collection(name: str) -> str:
    if not isinstance(name, str) or not COLLECTION_NAME.fullmatch(name):
        raise InvalidRequest(
            f"collection name {name!r} must be 1-128 characters: letters, digits, '_', '.', '-' "
            "(starting with a letter or digit)"
        )
    return name


def check_uuid(value: str) -> str:
    """The canonical (lower-case, hyphenated) form of a UUID, or a clear error."""
    try:
        return str(uuidlib.UUID(str(value)))
    except ValueError:
        raise InvalidRequest(f"{value!r} is not a UUID") from None


def new_uuid() -> str:
    return str(uuidlib.uuid4())


@dataclass(frozen=True, slots=True)
class Record:
    """A record as readers see it. ``hlc`` is the stamp of its last change;
    ``seq`` its position in this instance's change feed."""

    collection: str
    uuid: str
    origin: str
    hlc: int
    deleted: bool
    data: dict[str, Any]
    seq: int
    updated: datetime

    def document(self) -> dict[str, Any]:
        return {
            "collection": self.collection,
            "uuid": self.uuid,
            "origin": self.origin,
            "hlc": self.hlc,
            "changed": hlc.to_datetime(self.hlc).isoformat(),
            "deleted": self.deleted,
            "data": self.data,
            "seq": self.seq,
            "updated": self.updated.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class ChangePage:
    """A page of the change feed: pass ``cursor`` as ``since`` to read on."""

    collection: str
    changes: list[Record]
    cursor: int
    more: bool

    def document(self) -> dict[str, Any]:
        return {
            "collection": self.collection,
            "changes": [r.document() for r in self.changes],
            "cursor": self.cursor,
            "more": self.more,
        }


@dataclass(frozen=True, slots=True)
class Collection:
    name: str
    schema: dict[str, Any] | None
    created: datetime
    records: int = 0
    deleted: int = 0
    head: int = 0

    def document(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "schema": self.schema,
            "created": self.created.isoformat(),
            "records": self.records,
            "deleted": self.deleted,
            "head": self.head,
        }


@dataclass(frozen=True, slots=True)
class ApplyResult:
    """What applying one replication batch did."""

    received: int = 0
    changed: int = 0
    unchanged: int = 0
    conflicts: int = 0
    cursor: int = 0
    duplicate: bool = False
    need: list[str] = field(default_factory=list)  # echo stubs we lack: send these in full

    def document(self) -> dict[str, Any]:
        return {
            "received": self.received,
            "changed": self.changed,
            "unchanged": self.unchanged,
            "conflicts": self.conflicts,
            "cursor": self.cursor,
            "duplicate": self.duplicate,
            "need": self.need,
        }
