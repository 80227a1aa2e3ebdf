"""The dataset methods on the JSON-RPC and XML-RPC doors: publish, broadcast, status,
history and restart, over the same services as REST and the CLI."""

from __future__ import annotations

import time
import xmlrpc.client
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.pair import make_pair
from tests.support.server import Server
from tests.support.trees import hash_tree, make_tree

UID = "fac.rpc-1"


def jsonrpc(server: Server, method: str, *params: Any) -> Any:
    r = httpx.post(
        server.url + "/jsonrpc",
        json={"jsonrpc": "2.0", "method": method, "params": list(params), "id": 1},
        timeout=60,
    )
    if r.status_code == 404:
        pytest.skip("this build has no JSON-RPC door")
    return r.json()


def test_dataset_methods_over_json_rpc_and_xml_rpc(
    server_factory: Any, tmp_path: Path, consumer_db: str
) -> None:
    pair = make_pair(server_factory, tmp_path, consumer_db)
    expected = make_tree(pair.data / "exp", 20, seed=2)
    doc = jsonrpc(pair.provider, "datasets.publish", UID, "data:exp", {"beamline": "I04"})
    assert "result" in doc, doc
    assert pair.provider.wait_job(doc["result"]["job_id"])["state"] == "succeeded"
    shown = jsonrpc(pair.provider, "datasets.show", UID)["result"]
    assert shown["files"] == 20 and shown["meta"] == {"beamline": "I04"}

    proxy: Any = xmlrpc.client.ServerProxy(pair.provider.url + "/RPC2", allow_none=True)
    methods = proxy.system.listMethods()
    for name in ("publish", "broadcast", "status", "restart", "history"):
        assert f"datasets.{name}" in methods
    results = proxy.datasets.broadcast(UID, "")
    assert results == [{"site": "home", "ok": True, "state": "registered"}]

    deadline = time.monotonic() + 180
    while (
        state := jsonrpc(pair.consumer, "datasets.status", UID)["result"]["state"]
    ) != "complete":
        assert state != "failed_permanent" and time.monotonic() < deadline, state
        time.sleep(0.2)
    assert hash_tree(pair.inbox / "from-fac" / UID) == expected
    history = jsonrpc(pair.consumer, "datasets.history", UID)["result"]
    assert history[-1]["to"] == "complete"
    refused = jsonrpc(pair.consumer, "datasets.restart", UID)
    assert "error" in refused and "only a failed one restarts" in refused["error"]["message"]
    unknown = jsonrpc(pair.consumer, "datasets.status", "fac.nope")
    assert "error" in unknown and "does not exist" in unknown["error"]["message"]
