"""Payload mapping and sink definitions: pure rules."""

from __future__ import annotations

import math
from typing import Any

import pytest

from dataferry.errors import InvalidRequest
from dataferry.sinks import mapping
from dataferry.sinks.mapping import Change
from dataferry.sinks.model import idempotency_key
from dataferry.sinks.service import parse_spec

RECORD = {
    "species": "Acacia dealbata",
    "ignored": 0,
    "user_email": "expert@ala.org.au",
    "is_admin": "1",
    "area": "POLYGON((0 0, 1 0, 1 1, 0 0))",
    "nested": {"a": {"b": 5}},
}


def test_default_document() -> None:
    doc = mapping.document(Change("7", "new", "2026-01-01T00:00:00", RECORD), None)
    assert doc == {
        "id": "7",
        "status": "new",
        "lastModified": "2026-01-01T00:00:00",
        "record": RECORD,
    }


def test_mapping_renames_selects_nests_and_adds_constants() -> None:
    spec: dict[str, Any] = {
        "fields": {
            "id": "id",
            "status": "status",
            "lastModified": "lastModified",
            "apiKey": "apiKey",
            "ignored": {"from": "record.ignored", "type": "bool"},
            "species": "record.species",
            "user": {
                "email": "record.user_email",
                "isAdmin": {"from": "record.is_admin", "type": "bool"},
            },
            "deep": "record.nested.a.b",
            "missing": "record.nope",
            "withDefault": {"from": "record.nope", "default": "x"},
            "source": {"const": {"system": "dataferry"}},
        },
        "deleted": ["id", "status", "lastModified", "apiKey"],
    }
    mapping.validate(spec)
    doc = mapping.document(Change("7", "modified", "T", RECORD), spec, api_key="K")
    assert doc == {
        "id": "7",
        "status": "modified",
        "lastModified": "T",
        "apiKey": "K",
        "ignored": False,
        "species": "Acacia dealbata",
        "user": {"email": "expert@ala.org.au", "isAdmin": True},
        "deep": 5,
        "missing": None,
        "withDefault": "x",
        "source": {"system": "dataferry"},
    }
    gone = mapping.document(Change("7", "deleted", "T2", RECORD), spec, api_key="K")
    assert gone == {"id": "7", "status": "deleted", "lastModified": "T2", "apiKey": "K"}


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"fields": {}}, "non-empty"),
        ({"fields": {"a": "nope"}}, "'nope' is not a known value"),
        ({"fields": {"a": "id.x"}}, "only record.<field>"),
        ({"fields": {"a": {"const": 1, "x": 2}}}, "stands alone"),
        ({"fields": {"a": {"from": "record.x", "type": "date"}}}, "type must be"),
        ({"fields": {"a": 3}}, "expected a path"),
        ({"fields": {"a": "id"}, "deleted": ["b"]}, "not in 'fields'"),
        ({"fields": {"a": "id"}, "extra": 1}, "unknown keys"),
    ],
)
def test_bad_mappings_are_named(bad: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidRequest, match=message.replace("(", r"\(").replace(".", r"\.")):
        mapping.validate(bad)


def test_jsonable_values() -> None:
    import datetime as dt
    import decimal

    assert mapping.jsonable(dt.datetime(2026, 1, 2, 3, 4, 5)) == "2026-01-02T03:04:05"
    assert mapping.jsonable(decimal.Decimal("1.5")) == 1.5
    assert mapping.jsonable(decimal.Decimal("2")) == 2
    assert mapping.jsonable(b"\x00\x01") == "AAE="


def test_idempotency_key_is_stable_and_escaped() -> None:
    a = idempotency_key("table:vettings", "a/b c", "2026-01-01 00:00:00")
    assert a == idempotency_key("table:vettings", "a/b c", "2026-01-01 00:00:00")
    assert a == "table:vettings/a%2Fb%20c/2026-01-01%2000:00:00"


@pytest.mark.parametrize(
    ("definition", "message"),
    [
        ({"name": "x", "source": {}}, "exactly one source"),
        ({"name": "x", "source": {"collection": "c", "table": None}, "url": "ftp://x"}, "http"),
        ({"name": "bad name", "source": {"collection": "c"}}, "sink name"),
        (
            {"name": "x", "source": {"collection": "c"}, "retry_interval": 10, "retry_cap": 1},
            "retry_cap",
        ),
        ({"name": "x", "source": {"collection": "c"}, "accept": "3xx"}, "accept"),
        (
            {
                "name": "x",
                "source": {
                    "table": {
                        "url": "sqlite://",
                        "name": "t; drop",
                        "key": "id",
                        "modified": "m",
                        "deleted": "d",
                        "last_sync": "l",
                    }
                },
            },
            "not a table name",
        ),
        ({"name": "x", "source": {"collection": "c"}, "colour": 1}, "colour"),
    ],
)
def test_bad_definitions_are_named(definition: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        parse_spec(definition)


CASTS: dict[str, Any] = {
    "fields": {
        "id": "id",
        "score": {"from": "record.score", "type": "float"},
        "count": {"from": "record.count", "type": "int", "default": -1},
    }
}


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"score": "nan"}, "field 'score': record.score is 'nan' as a float"),
        ({"score": "-Infinity"}, "field 'score': record.score is '-Infinity' as a float"),
        ({"score": "1e400"}, "field 'score': record.score is '1e400' as a float"),
        ({"score": 10**400}, "field 'score': record.score is a number too large for a float"),
        ({"count": float("inf")}, "field 'count': record.count is 'Infinity', which is not an"),
        ({"count": float("nan")}, "field 'count': record.count is 'NaN', which is not an"),
        ({"count": " -inf"}, "field 'count': record.count is ' -inf', which is not an"),
    ],
)
def test_a_cast_json_cannot_carry_is_a_document_error_naming_the_field(
    record: dict[str, Any], message: str
) -> None:
    """Before, a float cast sent NaN or Infinity (not JSON) and an int cast of an
    infinity raised OverflowError: retried for ever. Now a permanent DocumentError."""
    with pytest.raises(mapping.DocumentError) as caught:
        mapping.document(Change("7", "new", "T", record), CASTS)
    assert message in caught.value.message


def test_values_that_are_not_numbers_still_take_the_default() -> None:
    doc = mapping.document(Change("7", "new", "T", {"score": "2.5", "count": "abc"}), CASTS)
    assert doc == {"id": "7", "score": 2.5, "count": -1}
    doc = mapping.document(Change("7", "new", "T", {"score": "x", "count": 1e300}), CASTS)
    assert doc["score"] is None and doc["count"] == int(1e300)


def test_default_document_carries_numbers_json_has_not_got_as_text() -> None:
    # A record read from an outbox written before jsonable() turned them into text.
    doc = mapping.document(Change("7", "new", "T", {"a": {"b": [1.0, float("inf")]}}), None)
    assert doc["record"] == {"a": {"b": [1.0, "Infinity"]}}
    with pytest.raises(mapping.DocumentError, match=r"field 'big' is nan"):
        mapping.document(Change("7", "new", "T", {}), {"fields": {"big": {"const": math.nan}}})


def test_jsonable_writes_numbers_json_has_not_got_as_text() -> None:
    import decimal

    assert mapping.jsonable(float("nan")) == "NaN"
    assert mapping.jsonable(float("-inf")) == "-Infinity"
    assert mapping.jsonable(decimal.Decimal("Infinity")) == "Infinity"
    assert mapping.jsonable(decimal.Decimal("-NaN")) == "NaN"
    assert mapping.jsonable(decimal.Decimal("sNaN")) == "NaN"
    assert mapping.jsonable(decimal.Decimal("1E+5000")) == "1E+5000"
    assert mapping.jsonable(decimal.Decimal("1E+100")) == 10**100
    assert mapping.jsonable({"x": [float("inf")]}) == {"x": ["Infinity"]}


@pytest.mark.parametrize(
    "value", [{"const": float("nan")}, {"from": "record.x", "default": [float("inf")]}]
)
def test_a_mapping_constant_json_cannot_carry_is_refused(value: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequest, match="mapping a: NaN and Infinity are not JSON numbers"):
        mapping.validate({"fields": {"a": value}})
