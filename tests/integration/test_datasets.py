"""Dataset delivery between two real instances on loopback: publish, broadcast, the
consumer's state machine driven by ticks, restarts of either side, integrity."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.databases import PostgresDatabases, sqlite_url
from tests.support.pair import CONSUMER, Pair, make_pair
from tests.support.trees import hash_tree, make_tree, temporaries

UID = "fac.exp-0001"


@pytest.fixture
def consumer_db(tmp_path: Path, postgres: PostgresDatabases | None) -> str:
    """The consumer's own database (the provider uses the test's)."""
    if postgres is None:
        folder = tmp_path / "consumer-db"
        folder.mkdir()
        return sqlite_url(folder)
    return postgres.clone()


def publish(pair: Pair, uid: str = UID, folder: str = "exp1", **meta: str) -> dict[str, Any]:
    args = ["dataset", "publish", uid, "--from", f"data:{folder}"]
    for k, v in meta.items():
        args += ["--meta", f"{k}={v}"]
    doc: dict[str, Any] = pair.provider.cli_json(*args)
    job = pair.provider.wait_job(doc["job_id"])
    assert job["state"] == "succeeded", job
    return doc


def test_500_files_delivered_byte_for_byte_through_ticks(
    server_factory: Any, tmp_path: Path, consumer_db: str
) -> None:
    pair = make_pair(server_factory, tmp_path, consumer_db)
    expected = make_tree(pair.data / "exp1", 500, seed=11)
    publish(pair, beamline="I03", proposal="mx1234")
    shown = pair.provider.cli_json("dataset", "show", UID)
    assert shown["state"] == "ready" and shown["files"] == 500
    assert {f["path"]: f["sha256"] for f in shown["manifest"]} == expected

    result = pair.provider.cli_json("dataset", "broadcast", UID)
    assert result["results"] == [{"site": CONSUMER, "ok": True, "state": "registered"}]
    # a second announcement is accepted and changes nothing
    again = pair.provider.cli_json("dataset", "broadcast", UID, "--site", CONSUMER)
    assert again["results"][0]["ok"]

    doc = pair.wait_synced(UID)
    assert doc["state"] == "complete", doc
    assert doc["files"] == 500 and doc["meta"]["beamline"] == "I03"
    landed = pair.inbox / "from-fac" / UID
    assert hash_tree(landed) == expected
    assert temporaries(pair.inbox) == []
    history = pair.consumer.cli_json("dataset", "history", UID)
    states = [h["to"] for h in history]
    assert states[0] == "registered" and states[-1] == "complete"
    assert "transfer_requested" in states and "checking_integrity" in states
    assert all(h["at"] and h["reason"] for h in history)
    # the provider's metadata as METS XML
    with pair.provider.client() as c:
        mets = c._http.get(f"/api/v1/datasets/{UID}", params={"format": "mets"})
    assert mets.status_code == 200 and b"<mets:mets" in mets.content
    assert mets.content.count(b"<mets:file ") == 500
