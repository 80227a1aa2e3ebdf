"""Records and the replication protocol on the JSON-RPC and XML-RPC doors: the same
service calls as REST. Two real instances exchange a batch through the doors alone
and end up equal. Pushes go over JSON-RPC: a batch carries 64-bit cursors and
clock stamps, which Python's XML-RPC client refuses to send (the server sends
them as ``<i8>``, which it reads)."""

from __future__ import annotations

import xmlrpc.client
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.databases import PostgresDatabases
from tests.support.replication import TOKENS, instance_env, own_database
from tests.support.server import Server


def jsonrpc(server: Server, method: str, *params: Any) -> Any:
    r = httpx.post(
        server.url + "/jsonrpc",
        json={"jsonrpc": "2.0", "method": method, "params": list(params), "id": 1},
        headers={"Authorization": f"Bearer {server.env['DATAFERRY_TOKEN']}"},
        timeout=60,
    )
    assert r.status_code == 200, r.text
    doc = r.json()
    assert "result" in doc, doc
    return doc["result"]


def xmlrpc_proxy(server: Server, name: str) -> Any:
    host = server.url.split("://", 1)[1]
    return xmlrpc.client.ServerProxy(f"http://x:{TOKENS[name]}@{host}/RPC2", allow_none=True)


def test_records_and_replication_over_rpc(
    server_factory: Any, tmp_path: Path, postgres: PostgresDatabases | None
) -> None:
    a = server_factory("a", env=instance_env("a"), db=own_database(tmp_path, postgres, "a"))
    b = server_factory("b", env=instance_env("b"), db=own_database(tmp_path, postgres, "b"))
    proxy_a, proxy_b = xmlrpc_proxy(a, "a"), xmlrpc_proxy(b, "b")
    methods = proxy_a.system.listMethods()
    for name in ("hello", "pull", "fetch", "checkpoint", "push", "sync"):
        assert f"replication.{name}" in methods
    for name in ("put", "get", "delete", "changes"):
        assert f"records.{name}" in methods

    # Records through both doors.
    first = jsonrpc(a, "records.put", "birds", {"species": "emu", "n": 1})
    second = proxy_a.records.put("birds", {"species": "kiwi", "n": 2}, "")
    assert proxy_a.records.get("birds", first["uuid"], False)["data"] == {"species": "emu", "n": 1}
    proxy_a.records.delete("birds", second["uuid"])
    with pytest.raises(xmlrpc.client.Fault):
        proxy_a.records.get("birds", second["uuid"], False)
    page = jsonrpc(a, "records.changes", "birds", 0, 100)
    assert {c["uuid"] for c in page["changes"]} == {first["uuid"], second["uuid"]}

    # One replication round by hand, through the doors only.
    hello_a, hello_b = jsonrpc(a, "replication.hello"), proxy_b.replication.hello()
    assert hello_a["protocol"] == hello_b["protocol"] == 2 and "birds" in hello_a["collections"]
    since = int(proxy_b.replication.checkpoint("birds", hello_a["instance_id"])["cursor"])
    batch = jsonrpc(
        a,
        "replication.pull",
        {"protocol": 1, "collection": "birds", "since": since, "requester": hello_b["instance_id"]},
    )
    assert len(batch["changes"]) == 2
    result = jsonrpc(b, "replication.push", batch)
    assert result["received"] == 2
    assert (
        proxy_b.replication.checkpoint("birds", hello_a["instance_id"])["cursor"] == batch["cursor"]
    )
    assert proxy_b.records.get("birds", first["uuid"], False)["data"] == {"species": "emu", "n": 1}
    assert proxy_b.records.get("birds", second["uuid"], True)["deleted"] is True
    # The same batch again changes nothing (idempotent).
    again = jsonrpc(b, "replication.push", batch)
    assert again["changed"] == 0

    # Bad input: a wrong protocol version is refused with a clear message.
    r = httpx.post(
        b.url + "/jsonrpc",
        json={
            "jsonrpc": "2.0",
            "method": "replication.push",
            "params": [{**batch, "protocol": 99}],
            "id": 2,
        },
        headers={"Authorization": f"Bearer {TOKENS['b']}"},
        timeout=60,
    )
    assert "not supported" in r.json()["error"]["message"]
