"""Export and import: CSV, JSON and XML round trips, date filters, upsert counts,
rejected rows with reasons, and an XML entity bomb that changes nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from dataferry.errors import InvalidRequest, NotFound
from dataferry.records import exchange

BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<records><record uuid="8a5b6f0e-0d3e-4a43-9d8e-1b1f2b4c9a11">
<data>{"x": "&lol3;"}</data></record></records>
"""


def body(core: Any, collection: str, fmt: str, **kw: Any) -> bytes:
    _, chunks = exchange.export(core.records, collection, fmt, kw.get("since"), kw.get("until"))
    return b"".join(chunks)


@pytest.mark.parametrize("fmt", ["csv", "json", "xml"])
def test_round_trip_into_another_instance(core: Any, fmt: str, tmp_path: Any) -> None:
    from dataferry.app import build
    from dataferry.config import Settings

    r = core.records
    keep = r.put("obs", {"species": "emu", "n": 3, "tags": ["a", "<b>&"], "nested": {"k": None}})
    gone = r.put("obs", {"species": "kiwi"})
    r.delete("obs", gone.uuid)
    data = body(core, "obs", fmt)

    other = build(Settings(home=tmp_path / "other", database_url=f"sqlite:///{tmp_path}/o.db"))
    try:
        report = exchange.import_(other.records, "obs", fmt, data)
        assert report.document()["created"] == 2 and report.document()["rejected"] == 0
        assert other.records.get("obs", keep.uuid).data == keep.data
        assert other.records.get("obs", keep.uuid).hlc == keep.hlc  # merged as the origin's
        assert other.records.get("obs", gone.uuid, include_deleted=True).deleted
        again = exchange.import_(other.records, "obs", fmt, data)
        assert again.unchanged == 2 and again.created == again.updated == 0
        # importing back into the source changes nothing either
        assert exchange.import_(core.records, "obs", fmt, data).unchanged == 2
    finally:
        other.stop()


def test_import_upserts_and_reports_each_rejected_row(core: Any) -> None:
    r = core.records
    r.create_collection("obs", {"type": "object", "properties": {"n": {"type": "integer"}}})
    existing = r.put("obs", {"n": 1})
    rows = [
        {"uuid": existing.uuid, "n": 2},  # update
        {"n": 5},  # create (uuid generated)
        {"uuid": "nope", "n": 1},  # bad uuid
        {"n": "five"},  # fails the schema
        {"uuid": existing.uuid, "data": "{not json"},
    ]
    report = exchange.import_(r, "obs", "json", json.dumps(rows).encode()).document()
    assert (report["created"], report["updated"], report["rejected"]) == (1, 1, 3)
    reasons = {x["row"]: x["reason"] for x in report["rejections"]}
    assert "UUID" in reasons[3] and "schema" in reasons[4] and "JSON" in reasons[5]
    assert r.get("obs", existing.uuid).data == {"n": 2}


U = "8a5b6f0e-0d3e-4a43-9d8e-1b1f2b4c9a11"


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ({}, "a new record needs at least one field"),
        ({"uuid": U, "data": {"a": 1}, "hlc": 1, "origin": "a\x00b"}, "origin must be"),
        ({"uuid": U, "data": {"a": 1}, "hlc": 1, "origin": "o" * 65}, "origin must be"),
        ({"uuid": U, "data": {"a": 1}, "hlc": 1, "origin": {"a": 1}}, "origin must be"),
        ({"uuid": U, "data": {"a": 1}, "hlc": 1.5, "origin": "x"}, "not an integer"),
        ({"uuid": U, "data": {"a": 1}, "hlc": True, "origin": "x"}, "not an integer"),
        ({"uuid": U, "data": {"a": 1}, "deleted": [1]}, "deleted must be true or false"),
        # JSON text in a data column spelling "\\ud800": stored, it could never be served
        ({"uuid": U, "data": '{"a": "\\ud800"}'}, "lone surrogate"),
    ],
)
def test_a_row_the_store_cannot_hold_is_rejected_alone(core: Any, row: Any, reason: str) -> None:
    """Each of these once aborted the whole import (an empty object; on PostgreSQL a
    NUL or an over-long origin) or was stored mangled (an origin object as its repr,
    [1] as a delete): now the row is rejected with its reason and the rest imported."""
    rows = json.dumps([row, {"n": 1}]).encode()
    report = exchange.import_(core.records, "obs", "json", rows).document()
    assert (report["created"], report["rejected"]) == (1, 1), report
    assert report["rejections"][0]["row"] == 1 and reason in report["rejections"][0]["reason"]
    assert [r.data for r in core.records.list("obs")[0]] == [{"n": 1}]


def test_export_since_until(core: Any) -> None:
    import time

    r = core.records
    first = r.put("obs", {"i": 1})
    time.sleep(0.05)
    second = r.put("obs", {"i": 2})
    from dataferry.records import hlc

    cut = hlc.to_datetime(second.hlc).isoformat()
    late = json.loads(body(core, "obs", "json", since=cut))["records"]
    early = json.loads(body(core, "obs", "json", until=cut))["records"]
    assert [x["uuid"] for x in late] == [second.uuid]
    assert [x["uuid"] for x in early] == [first.uuid]
    with pytest.raises(InvalidRequest, match="ISO"):
        body(core, "obs", "json", since="yesterday")
    with pytest.raises(NotFound):
        body(core, "missing", "json")


@pytest.mark.parametrize(
    ("fmt", "data", "message"),
    [
        ("xml", BOMB, "refused"),
        ("xml", b"<records><record", "malformed"),
        ("xml", b"<other/>", "root element"),
        ("json", b"{not json", "malformed"),
        ("json", b'{"x": 1}', "list of rows"),
        ("json", b'[{"a": "\\ud800"}]', "lone surrogate"),
        ("csv", b"", "header"),
        ("yaml", b"", "format"),
    ],
)
def test_bad_files_change_nothing(core: Any, fmt: str, data: bytes, message: str) -> None:
    core.records.put("obs", {"x": 1})
    before = core.records.changes("obs").cursor
    with pytest.raises(InvalidRequest, match=message):
        exchange.import_(core.records, "obs", fmt, data)
    assert core.records.changes("obs").cursor == before
    assert core.records.list("obs")[1] == 1


def test_cli_export_and_import(server: Any, tmp_path: Any) -> None:
    server.cli("records", "put", "obs", '{"species": "emu"}')
    out = tmp_path / "obs.csv"
    server.cli("records", "export", "obs", "--format", "csv", "--output", str(out))
    assert "emu" in out.read_text()
    assert server.cli_json("records", "import", "copy", str(out))["created"] == 1
    bomb = tmp_path / "bomb.xml"
    bomb.write_bytes(BOMB)
    result = server.cli("records", "import", "obs", str(bomb), check=False)
    assert result.returncode == 1 and "refused" in result.stderr
