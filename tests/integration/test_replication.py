"""Replication between real ``dataferry serve`` processes on loopback ports, each
with its own database: 10,000 records both ways, a third instance joining,
onward propagation without echoes, tokens, the schedule, a restore from backup."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.databases import PostgresDatabases
from tests.support.replication import TOKENS, instance_env, own_database
from tests.support.server import Server

N_A, N_B = 6000, 4000  # 10,000 records, made on both sides


@pytest.fixture
def make_instance(server_factory: Any, tmp_path: Path, postgres: PostgresDatabases | None) -> Any:
    def make(name: str, **env: str) -> Server:
        db = own_database(tmp_path, postgres, name)
        srv: Server = server_factory(name, env=instance_env(name, **env), db=db)
        return srv

    return make


def bulk(server: Server, tmp_path: Path, collection: str, rows: list[dict[str, Any]]) -> None:
    f = tmp_path / f"{collection}-{server.port}-{len(rows)}.json"
    f.write_text(json.dumps(rows))
    report = server.cli_json("records", "import", collection, str(f))
    assert report["rejected"] == 0 and report["created"] + report["updated"] == len(rows)


def snapshot(server: Server, collection: str) -> dict[str, tuple[bool, str]]:
    """uuid -> (deleted, data) of every record, tombstones included."""
    out: dict[str, tuple[bool, str]] = {}
    with httpx.Client(headers={"Authorization": f"Bearer {server.env['DATAFERRY_TOKEN']}"}) as h:
        offset = 0
        while True:
            page = h.get(
                f"{server.url}/api/v1/collections/{collection}/records",
                params={"include_deleted": True, "limit": 5000, "offset": offset},
            ).json()
            for r in page["records"]:
                out[r["uuid"]] = (r["deleted"], json.dumps(r["data"], sort_keys=True))
            offset += len(page["records"])
            if not page["records"]:
                return out


def sync(server: Server, peer: str) -> dict[str, Any]:
    job = server.cli_json("sync", peer, "--wait", check=False)
    assert job["state"] == "succeeded", job
    result: dict[str, Any] = server.client().request("GET", f"/api/v1/jobs/{job['job_id']}/detail")[
        "result"
    ]
    return result


def test_two_servers_sync_10000_records_both_ways_and_a_third_joins(
    make_instance: Any, tmp_path: Path
) -> None:
    a, b = make_instance("a"), make_instance("b")
    bulk(a, tmp_path, "obs", [{"site": "a", "i": i, "pad": "x" * 200} for i in range(N_A)])
    bulk(b, tmp_path, "obs", [{"site": "b", "i": i, "pad": "y" * 200} for i in range(N_B)])
    a.cli("peer", "add", "b", b.url, "--token", TOKENS["b"])
    b.cli("peer", "add", "a", a.url, "--token", TOKENS["a"])

    first = sync(a, "b")
    assert first["pulled"] == N_B and first["pushed"] == N_A
    snap_a, snap_b = snapshot(a, "obs"), snapshot(b, "obs")
    assert len(snap_a) == N_A + N_B and snap_a == snap_b

    # edits and deletes on both sides, then a sync started from the other side
    some_a = sorted(snap_a)[:50]
    with a.client() as ca, b.client() as cb:
        for u in some_a[:20]:
            ca.request("PUT", f"/api/v1/collections/obs/records/{u}", json={"edited": True})
        for u in some_a[20:30]:
            cb.request("DELETE", f"/api/v1/collections/obs/records/{u}")
    again = sync(b, "a")
    assert again["pulled"] == 20 and again["pushed"] == 10
    snap_a, snap_b = snapshot(a, "obs"), snapshot(b, "obs")
    assert snap_a == snap_b
    assert sum(1 for d, _ in snap_a.values() if d) == 10

    # nothing changed: nothing travels (no echoes either way)
    quiet = sync(a, "b")
    assert quiet["pulled"] == 0 and quiet["pushed"] == 0

    # a third instance joins through a and receives everything
    c = make_instance("c")
    c.cli("peer", "add", "a", a.url, "--token", TOKENS["a"])
    joined = sync(c, "a")
    assert joined["pulled"] == N_A + N_B
    assert snapshot(c, "obs") == snap_a

    # a change made on c reaches b through a
    target = some_a[40]
    c.cli("records", "put", "obs", '{"site": "c"}', "--uuid", target)
    sync(c, "a")
    sync(b, "a")
    assert b.cli_json("records", "get", "obs", target)["data"] == {"site": "c"}
    listed = {p["name"]: p for p in b.cli_json("peer", "list")}
    assert listed["a"]["sync_count"] == 2 and listed["a"]["last_error"] == ""
    assert listed["a"]["instance_id"]


def test_wrong_token_gets_401_and_changes_nothing(make_instance: Any) -> None:
    a, b = make_instance("a"), make_instance("b")
    a.cli("records", "put", "obs", '{"x": 1}')
    b.cli("records", "put", "obs", '{"y": 1}')
    a.cli("peer", "add", "b", b.url, "--token", "not-the-token")
    job = a.cli_json("sync", "b", "--wait", check=False)
    assert job["state"] == "failed" and "401" in job["error"]
    peer = a.cli_json("peer", "list")[0]
    assert "401" in peer["last_error"] and peer["sync_count"] == 0
    assert len(snapshot(a, "obs")) == 1 and len(snapshot(b, "obs")) == 1
    # the protocol doors themselves
    for method, path, body in [
        ("GET", "/api/v1/replication/hello", None),
        ("POST", "/api/v1/replication/push", b"{}"),
        ("POST", "/api/v1/replication/pull", b"{}"),
    ]:
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            r = httpx.request(method, b.url + path, content=body, headers=headers)
            assert r.status_code == 401
    assert len(snapshot(b, "obs")) == 1


def test_scheduled_sync_runs_by_itself(make_instance: Any) -> None:
    a, b = make_instance("a"), make_instance("b")
    # An integer beyond 64 bits crosses the wire exactly (JSON allows it; orjson alone
    # would turn it into a float).
    doc = {"x": 1, "big": 123456789012345678901234567890}
    rec = b.cli_json("records", "put", "obs", json.dumps(doc))
    a.cli("peer", "add", "b", b.url, "--token", TOKENS["b"], "--interval", "1")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if a.cli("records", "get", "obs", rec["uuid"], check=False).returncode == 0:
            break
        time.sleep(0.5)
    assert a.cli_json("records", "get", "obs", rec["uuid"])["data"] == doc


@pytest.mark.sqlite_only  # the backup here is a copy of the SQLite file
def test_restore_from_backup_loses_nothing(make_instance: Any, tmp_path: Path) -> None:
    a, b = make_instance("a"), make_instance("b")
    a.cli("peer", "add", "b", b.url, "--token", TOKENS["b"])
    early = b.cli_json("records", "put", "obs", '{"when": "before backup"}')
    sync(a, "b")
    b_db = Path(b.env["DATAFERRY_DATABASE_URL"].removeprefix("sqlite:///"))
    b.stop()
    backup = tmp_path / "b-backup.db"
    shutil.copy(b_db, backup)
    b.start()
    late = b.cli_json("records", "put", "obs", '{"when": "after backup"}')
    from_a = a.cli_json("records", "put", "obs", '{"when": "a, after backup"}')
    sync(a, "b")  # a now has b's late record, b has a's
    b.stop()
    for suffix in ("-wal", "-shm"):
        Path(f"{b_db}{suffix}").unlink(missing_ok=True)
    shutil.copy(backup, b_db)  # b restored: it lost `late` and `from_a`
    b.start()
    newer = b.cli_json("records", "put", "obs", '{"when": "after restore"}')
    sync(a, "b")
    for srv in (a, b):
        for rec in (early, late, from_a, newer):
            assert srv.cli_json("records", "get", "obs", rec["uuid"])["data"] == rec["data"]
    assert snapshot(a, "obs") == snapshot(b, "obs")


def test_the_http_doors_speak_version_2_and_serve_version_1(make_instance: Any) -> None:
    """Over real HTTP: hello says 2 (and 1 still served); a pull or fetch asking for
    version 1 gets a stamp per field; an unknown version gets 422; the transport
    speaks the lower of the two sides' versions."""
    from dataferry.records.transport import HttpTransport

    a = make_instance("a")
    uuid = a.cli_json("records", "put", "obs", '{"x": 1, "y": 2}')["uuid"]
    transport = HttpTransport(a.url, TOKENS["a"])
    try:
        hello = transport.hello()
        assert hello["protocol"] == 2 and hello["protocols"] == [1, 2]
        assert transport.protocol == 2
        assert list(transport.pull("obs", "me", 0, 10, 10**6)["changes"][0]["meta"]) == ["s"]
        transport.protocol = 1  # as an instance that speaks only version 1 would ask
        batch = transport.pull("obs", "me", 0, 10, 10**6)
        assert batch["protocol"] == 1
        assert sorted(batch["changes"][0]["meta"]["f"]) == ["x", "y"]
        assert "s" not in batch["changes"][0]["meta"]
        assert sorted(transport.fetch("obs", [uuid])[0]["meta"]["f"]) == ["x", "y"]
    finally:
        transport.close()
    r = httpx.post(
        f"{a.url}/api/v1/replication/pull",
        json={"protocol": 3, "collection": "obs", "requester": "me", "since": 0},
        headers={"Authorization": f"Bearer {TOKENS['a']}"},
    )
    assert r.status_code == 422 and "protocol 3" in r.text
