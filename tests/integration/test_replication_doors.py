"""Every door of ``replication.push`` (REST, JSON-RPC, XML-RPC) holds a pushed
record's data to the limit of a local write: 100 levels of nesting, counting
``data`` itself, no more and no less, on real servers."""

from __future__ import annotations

import json
import xmlrpc.client
from typing import Any

import httpx

from dataferry.records import hlc
from dataferry.records.model import MAX_DEPTH
from tests.support.replication import TOKENS, instance_env
from tests.support.server import Server

PEER = "peer-instance-id"
UUIDS = [f"8a5b6f0e-0d3e-4a43-9d8e-1b1f2b4c{n:04x}" for n in range(16)]


def nested(levels: int) -> dict[str, Any]:
    """A record's data nesting ``levels`` deep, the data object being level 1."""
    inner: Any = 0
    for _ in range(levels - 1):
        inner = [inner]
    return {"x": inner}


def batch(uuid: str, data: dict[str, Any], since: int) -> dict[str, Any]:
    stamp = hlc.wall_ms() * hlc.SCALE
    change = {"uuid": uuid, "origin": PEER, "data": data, "meta": {"s": [stamp, PEER]}}
    return {
        "protocol": 2,
        "collection": "obs",
        "source": PEER,
        "epoch": "e",
        "since": since,
        "cursor": since + 1,
        "changes": [change],
    }


class _Marshaller(xmlrpc.client.Marshaller):
    """Sends integers past 32 bits as ``<i8>`` (stamps and cursors), as the server's
    own marshaller does; Python's refuses them."""

    dispatch = dict(xmlrpc.client.Marshaller.dispatch)

    def dump_long(self, value: int, write: Any) -> None:
        write(f"<value><i8>{value}</i8></value>\n")

    dispatch[int] = dump_long  # type: ignore[assignment]


def xml_call(method: str, *params: Any) -> bytes:
    body = _Marshaller("utf-8", allow_none=True).dumps(params)
    return (
        f"<?xml version='1.0'?>\n<methodCall><methodName>{method}</methodName>"
        f"<params>{body}</params></methodCall>"
    ).encode()


def deep_xml_push(doc: dict[str, Any], levels: int) -> bytes:
    """An XML-RPC push of ``doc`` whose first change's data nests ``levels`` deep,
    written as text (Python's marshaller recurses, so it cannot write it)."""
    doc["changes"][0]["data"] = {"x": "HERE"}
    body = xml_call("replication.push", doc)
    inner = (
        "<value><array><data>" * (levels - 1)
        + "<value><int>0</int></value>"
        + "</data></array></value>" * (levels - 1)
    )
    return body.replace(b"<value><string>HERE</string></value>", inner.encode())


def push(server: Server, door: str, doc: dict[str, Any] | bytes) -> tuple[bool, str]:
    """(accepted, what the door answered) for one pushed batch (bytes: XML-RPC as is)."""
    auth = {"Authorization": f"Bearer {TOKENS['a']}"}
    assert door == "xmlrpc" or not isinstance(doc, bytes)
    if door == "rest":
        r = httpx.post(
            f"{server.url}/api/v1/replication/push", content=json.dumps(doc), headers=auth
        )
        return r.status_code == 200, r.text
    if door == "jsonrpc":
        call = {"jsonrpc": "2.0", "method": "replication.push", "params": [doc], "id": 1}
        r = httpx.post(f"{server.url}/jsonrpc", json=call, headers=auth)
        assert r.status_code == 200, r.text
        return "result" in r.json(), r.text
    body = doc if isinstance(doc, bytes) else xml_call("replication.push", doc)
    r = httpx.post(f"{server.url}/RPC2", content=body, headers=auth)
    assert r.status_code == 200, r.text
    try:
        xmlrpc.client.loads(r.content)
    except xmlrpc.client.Fault as fault:
        return False, fault.faultString
    return True, r.text


def test_data_nests_100_levels_through_every_door(server_factory: Any) -> None:
    server = server_factory(env=instance_env("a"))
    cursor = 0
    for n, door in enumerate(("rest", "jsonrpc", "xmlrpc")):
        ok, answer = push(server, door, batch(UUIDS[2 * n], nested(MAX_DEPTH + 1), cursor))
        assert not ok and "nests deeper than 100 levels" in answer, (door, answer)
        ok, answer = push(server, door, batch(UUIDS[2 * n + 1], nested(MAX_DEPTH), cursor))
        assert ok, (door, answer)
        cursor += 1
    # XML-RPC's parser (expat, then xmlrpc.client's unmarshaller) has no depth limit of
    # its own: data nesting 100,000 levels arrives whole, and gets the same answer.
    ok, answer = push(server, "xmlrpc", deep_xml_push(batch(UUIDS[6], {}, cursor), 100_000))
    assert not ok and "change 0: data nests deeper than 100 levels" in answer, answer
    r = httpx.get(
        f"{server.url}/api/v1/collections/obs/records",
        headers={"Authorization": f"Bearer {TOKENS['a']}"},
    )
    records = r.json()["records"]
    assert sorted(r["uuid"] for r in records) == [UUIDS[1], UUIDS[3], UUIDS[5]]
    assert all(r["data"] == nested(MAX_DEPTH) for r in records)


def test_xmlrpc_values_json_has_not_got_are_refused(server_factory: Any) -> None:
    """XML-RPC has types JSON has not (``<base64>``, ``<dateTime.iso8601>``): as a
    record's data, through records.put or a pushed batch, they are a clear fault
    (base64 was an internal error, a date was stored as a string without its
    type), and nothing is stored."""
    server = server_factory(env=instance_env("a"))
    auth = {"Authorization": f"Bearer {TOKENS['a']}"}
    for n, value in enumerate(
        (xmlrpc.client.Binary(b"\x00\x01"), xmlrpc.client.DateTime("20261207T10:00:00"))
    ):
        kind = "bytes" if n == 0 else "datetime"
        for body in (
            xml_call("records.put", "obs", {"x": [value]}, ""),
            xml_call("replication.push", batch(UUIDS[n], {"x": {"y": value}}, 0)),
        ):
            r = httpx.post(f"{server.url}/RPC2", content=body, headers=auth)
            try:
                xmlrpc.client.loads(r.content)
                raise AssertionError(f"accepted: {r.text}")
            except xmlrpc.client.Fault as fault:
                assert fault.faultCode == -32602, fault.faultString
                assert f"holds a {kind} value, which JSON has not got" in fault.faultString
    r = httpx.get(f"{server.url}/api/v1/collections", headers=auth)
    assert r.json()["collections"] == []
