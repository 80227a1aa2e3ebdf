"""Records through the service, the REST API and the real CLI: put/get/delete/list,
tombstones, schemas, the change feed and its cursor, listeners."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from dataferry.errors import InvalidRequest, NotFound
from tests.support.server import Server


def test_put_get_delete_list_and_tombstones(core: Any) -> None:
    r = core.records
    a = r.put("sites", {"name": "A", "n": 1})
    assert a.origin == core.instance_id and not a.deleted
    b = r.put("sites", {"name": "A", "n": 2}, a.uuid)
    assert b.uuid == a.uuid and b.seq > a.seq and b.hlc > a.hlc and b.data == {"name": "A", "n": 2}
    same = r.put("sites", {"name": "A", "n": 2}, a.uuid)
    assert same.seq == b.seq  # nothing changed: no new change in the feed
    other = r.put("sites", {"name": "B"})
    records, total = r.list("sites")
    assert total == 2 and {x.uuid for x in records} == {a.uuid, other.uuid}

    tomb = r.delete("sites", a.uuid)
    assert tomb.deleted and tomb.seq > b.seq
    with pytest.raises(NotFound):
        r.get("sites", a.uuid)
    assert r.get("sites", a.uuid, include_deleted=True).data == {"name": "A", "n": 2}
    assert r.list("sites")[1] == 1
    assert r.list("sites", include_deleted=True)[1] == 2
    again = r.put("sites", {"name": "A", "n": 2}, a.uuid)  # writing brings it back
    assert not again.deleted


def test_numbers_are_stored_exactly(core: Any) -> None:
    data = {"big": 2**70, "negative": -(2**63) - 1, "f": 0.1, "s": "1234567890123456789012"}
    rec = core.records.put("sites", data)
    assert core.records.get("sites", rec.uuid).data == data
    assert type(core.records.get("sites", rec.uuid).data["big"]) is int


def test_change_feed_in_order_with_cursor_and_tombstones(core: Any) -> None:
    r = core.records
    ids = [r.put("feed", {"i": i}).uuid for i in range(25)]
    r.delete("feed", ids[3])
    r.put("feed", {"i": 100}, ids[5])
    seen: list[tuple[str, bool]] = []
    cursor = 0
    while True:
        page = r.changes("feed", since=cursor, limit=7)
        assert all(c.seq > cursor for c in page.changes)
        seen += [(c.uuid, c.deleted) for c in page.changes]
        cursor = page.cursor
        if not page.more:
            break
    # each record once, at its latest change; the last two changes come last
    assert len(seen) == 25 and seen[-2:] == [(ids[3], True), (ids[5], False)]
    assert r.changes("feed", since=cursor).changes == []


def test_listener_hears_committed_changes(core: Any) -> None:
    heard: list[tuple[str, int]] = []
    stop = core.records.subscribe(lambda c, seq: heard.append((c, seq)))
    rec = core.records.put("news", {"x": 1})
    core.records.delete("news", rec.uuid)
    stop()
    core.records.put("news", {"x": 2})
    assert [c for c, _ in heard] == ["news", "news"]
    assert heard[0][1] == rec.seq


def test_schema_rejects_bad_records_and_changes_nothing(core: Any) -> None:
    r = core.records
    schema = {"type": "object", "required": ["site"], "properties": {"site": {"type": "string"}}}
    r.create_collection("checked", schema)
    ok = r.put("checked", {"site": "A"})
    with pytest.raises(InvalidRequest, match="schema"):
        r.put("checked", {"site": 5})
    with pytest.raises(InvalidRequest, match="schema"):
        r.put_many("checked", [(None, {"site": "B"}), (None, {"other": 1})])
    records, total = r.list("checked")
    assert total == 1 and records[0].uuid == ok.uuid
    with pytest.raises(InvalidRequest, match="invalid JSON Schema"):
        r.set_schema("checked", {"type": 12})


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda r: r.put("bad name!", {"x": 1}), InvalidRequest),
        (lambda r: r.put("c", {"x": 1}, "not-a-uuid"), InvalidRequest),
        (lambda r: r.put("c", {}), InvalidRequest),
        (lambda r: r.get("nope", "8a5b6f0e-0d3e-4a43-9d8e-1b1f2b4c9a11"), NotFound),
        (lambda r: r.changes("nope"), NotFound),
        (lambda r: r.changes("c", since=-1), InvalidRequest),
        (lambda r: r.list("c", limit=0), InvalidRequest),
    ],
)
def test_bad_input_is_refused(core: Any, call: Any, error: type[Exception]) -> None:
    core.records.create_collection("c")
    with pytest.raises(error):
        call(core.records)
    assert core.records.collection("c").records == 0


def test_rest_and_cli(server: Server, tmp_path: Path) -> None:
    base = f"{server.url}/api/v1/collections"
    with httpx.Client() as http:
        created = http.post(f"{base}/obs/records", json={"species": "emu", "count": 3})
        assert created.status_code == 201, created.text
        uuid = created.json()["uuid"]
        got = http.get(f"{base}/obs/records/{uuid}").json()
        assert got["data"] == {"species": "emu", "count": 3}
        assert http.put(f"{base}/obs/records/{uuid}", json=[1, 2]).status_code == 422
        assert http.get(f"{base}/nope/records").status_code == 404
        feed = http.get(f"{base}/obs/changes", params={"since": 0, "limit": 10}).json()
        assert [c["uuid"] for c in feed["changes"]] == [uuid] and feed["more"] is False
        schema = {"type": "object", "properties": {"count": {"type": "integer"}}}
        assert http.put(f"{base}/obs", json={"schema": schema}).status_code == 200
        bad = http.put(f"{base}/obs/records/{uuid}", json={"species": "emu", "count": "x"})
        assert bad.status_code == 422 and "schema" in bad.json()["detail"]

    # the CLI
    out = server.cli_json("records", "put", "obs", '{"species": "kiwi", "count": 1}')
    kiwi = out["uuid"]
    doc_file = tmp_path / "doc.json"
    doc_file.write_text(json.dumps({"species": "kiwi", "count": 2}))
    server.cli("records", "put", "obs", "--uuid", kiwi, "--file", str(doc_file))
    assert server.cli_json("records", "get", "obs", kiwi)["data"]["count"] == 2
    assert server.cli_json("records", "delete", "obs", kiwi)["deleted"] is True
    assert server.cli("records", "get", "obs", kiwi, check=False).returncode == 1
    assert server.cli_json("records", "get", "obs", kiwi, "--include-deleted")["deleted"]
    listed = server.cli_json("records", "list", "obs", "--include-deleted")
    assert {r["uuid"] for r in listed} == {uuid, kiwi}
    changes = server.cli_json("records", "changes", "obs")
    assert changes["changes"][-1]["uuid"] == kiwi
    refused = server.cli("records", "put", "obs", '{"count": "many"}', check=False)
    assert refused.returncode == 1 and "schema" in refused.stderr
    cols = server.cli_json("records", "collections")
    assert [c["name"] for c in cols] == ["obs"]
    assert "records" in server.cli("records", "--help").stdout.lower()
