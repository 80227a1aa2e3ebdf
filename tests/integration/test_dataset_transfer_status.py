"""``transfer-status``, the provider's answer to a consumer's poll, is mapped from the
delivery job in the service: the REST door and both RPC doors give the same document
for every outcome, a failure of the lookup itself ("server error") included."""

from __future__ import annotations

import sqlite3
import xmlrpc.client
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from tests.support.pair import TOKEN
from tests.support.server import Server

UID = "fac.exp-1"
PEER = {"X-Dataferry-Site": "home", "Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def provider(server_factory: Any, tmp_path: Path) -> Server:
    """A provider with one ready dataset and the consumer site 'home' registered (at
    an address nothing answers: its delivery cannot succeed)."""
    data = tmp_path / "data" / "exp"
    data.mkdir(parents=True)
    (data / "f.txt").write_bytes(b"payload")
    srv: Server = server_factory("p", env={"DATAFERRY_DATASETS__SITE_NAME": "fac"})
    srv.cli("endpoint", "add", "data", str(tmp_path / "data"))
    srv.cli("site", "add", "home", "http://127.0.0.1:9", "--token", TOKEN, "--inbound", "in:x")
    job = srv.cli_json("dataset", "publish", UID, "--from", "data:exp")["job_id"]
    assert srv.wait_job(job)["state"] == "succeeded"
    return srv


def rest(srv: Server, transfer_id: int) -> httpx.Response:
    return httpx.get(
        f"{srv.url}/api/v1/datasets/{UID}/transfer-status",
        params={"transfer_id": transfer_id},
        headers=PEER,
        timeout=30,
    )


def jsonrpc(srv: Server, *params: Any) -> Any:
    r = httpx.post(
        f"{srv.url}/jsonrpc",
        json={"jsonrpc": "2.0", "method": "datasets.transfer_status", "params": params, "id": 1},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    doc = r.json()
    assert "result" in doc, doc
    return doc["result"]


def xml_rpc(srv: Server, *params: Any) -> Any:
    proxy: Any = xmlrpc.client.ServerProxy(f"{srv.url}/RPC2", allow_none=True)
    return proxy.datasets.transfer_status(*params)


def drop_job(database_url: str, job_id: int) -> None:
    """Delete a delivery's job and leave the delivery pointing at it, as a database
    restored in part, or cleaned by hand with its foreign keys off, would hold."""
    deletes = [f"DELETE FROM {t} WHERE {c} = {int(job_id)}" for t, c in DROPPED]
    if database_url.startswith("sqlite"):
        conn = sqlite3.connect(sa.make_url(database_url).database or "", timeout=30)
        try:
            conn.execute("PRAGMA foreign_keys=OFF")  # per connection, outside a transaction
            with conn:
                for sql in deletes:
                    conn.execute(sql)
        finally:
            conn.close()
        return
    engine = sa.create_engine(database_url)
    try:
        with engine.begin() as pg:
            pg.execute(sa.text("SET LOCAL session_replication_role = replica"))
            for sql in deletes:
                pg.execute(sa.text(sql))
    finally:
        engine.dispose()


DROPPED = [("job_files", "job_id"), ("job_attempts", "job_id"), ("jobs", "id")]


def test_every_door_gives_the_same_transfer_status(provider: Server, database_url: str) -> None:
    # no such transfer: "bad request" (HTTP 400), the same document over JSON-RPC
    none = rest(provider, 99)
    assert none.status_code == 400, none.text
    assert none.json()["status"] == "bad request"
    assert jsonrpc(provider, UID, "home", 99) == none.json() == xml_rpc(provider, UID, "home", 99)
    assert jsonrpc(provider, UID, "other-site", 99)["status"] == "bad request"

    # a delivery that ended (cancelled): "failed", with the job's document
    asked = httpx.post(
        f"{provider.url}/api/v1/datasets/{UID}/transfer-requests",
        json={},
        headers=PEER,
        timeout=30,
    )
    assert asked.status_code == 202, asked.text
    transfer = asked.json()["transfer_id"]
    provider.cli("cancel", str(transfer))
    assert provider.wait_job(transfer)["state"] == "cancelled"
    ended = rest(provider, transfer)
    assert ended.status_code == 200 and ended.json()["status"] == "failed", ended.text
    assert jsonrpc(provider, UID, "home", transfer) == ended.json()
    assert xml_rpc(provider, UID, "home", transfer) == ended.json()

    # the lookup itself fails (the delivery's job is gone): "server error" (HTTP 500)
    # from the service, so the RPC door answers it too, as a status and not a fault
    drop_job(database_url, transfer)
    broken = rest(provider, transfer)
    assert broken.status_code == 500, broken.text
    assert broken.json() == {
        "status": "server error",
        "message": f"job {transfer} does not exist",
    }
    assert jsonrpc(provider, UID, "home", transfer) == broken.json()
    assert xml_rpc(provider, UID, "home", transfer) == broken.json()
