"""Dataset delivery between two real instances on loopback: publish, broadcast, the
consumer's state machine driven by ticks, restarts of either side, integrity."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.pair import CONSUMER, Pair, make_pair
from tests.support.trees import hash_tree, make_tree, temporaries
from tests.support.waiting import wait_for

UID = "fac.exp-0001"


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


def test_integrity_failure_names_the_file_then_republish_and_restart_completes(
    server_factory: Any, tmp_path: Path, consumer_db: str
) -> None:
    pair = make_pair(server_factory, tmp_path, consumer_db)
    expected = make_tree(pair.data / "exp1", 30, seed=5)
    publish(pair)
    victim = sorted(expected)[7]
    path = pair.data / "exp1" / victim
    path.write_bytes(path.read_bytes() + b"changed after publishing")
    pair.provider.cli("dataset", "broadcast", UID)

    doc = pair.wait_synced(UID)
    assert doc["state"] == "failed_permanent", doc
    assert victim in doc["message"] and "1 of 30 files" in doc["message"]
    status = pair.consumer.cli_json("dataset", "status", UID)
    assert status["state"] == "failed_permanent"
    history = pair.consumer.cli_json("dataset", "history", UID)
    assert history[-1]["from"] == "checking_integrity" and victim in history[-1]["reason"]
    # it stays failed: ticks do not touch it
    time.sleep(1.5)
    assert pair.consumer.cli_json("dataset", "status", UID)["state"] == "failed_permanent"

    republished = publish(pair)
    assert republished["version"] == 2
    restarted = pair.consumer.cli_json("dataset", "restart", UID)
    assert restarted["state"] == "registered" and restarted["retries"] == 0
    doc = pair.wait_synced(UID)
    assert doc["state"] == "complete", doc
    assert doc["version"] == 2
    assert hash_tree(pair.inbox / "from-fac" / UID) == hash_tree(pair.data / "exp1")
    # restarting a dataset that did not fail is refused and changes nothing
    again = pair.consumer.cli("dataset", "restart", UID, check=False)
    assert again.returncode == 1 and "only a failed one restarts" in again.stderr
    assert pair.consumer.cli_json("dataset", "status", UID)["state"] == "complete"


MiB = 1024 * 1024
SLOW = {"DATAFERRY_TRANSFER__CONCURRENCY": "1", "DATAFERRY_TRANSFER__CHUNK_SIZE": "262144"}


def big_dataset(root: Path, files: int = 48) -> dict[str, str]:
    import hashlib

    out = {}
    block = os.urandom(4 * MiB)
    for i in range(files):
        rel = f"run-{i % 4}/frame-{i:03d}.h5"
        data = i.to_bytes(4, "big") + block
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
        out[rel] = hashlib.sha256(data).hexdigest()
    return out


def landed(pair: Pair) -> dict[str, os.stat_result]:
    root = pair.inbox / "from-fac" / UID
    if not root.exists():
        return {}
    return {
        p.relative_to(root).as_posix(): p.stat()
        for p in root.rglob("*.h5")  # final names only: temporaries end .dftmp
    }


def delivered(pair: Pair, transfer_id: int) -> list[str]:
    """Files the provider has recorded as delivered and verified."""
    with pair.provider.client() as c:
        return [str(f["path"]) for f in c.job_files(transfer_id) if f["state"] == "done"]


@pytest.mark.parametrize("victim", ["consumer", "provider"])
def test_kill_9_either_side_during_transfer_still_completes_without_resending(
    server_factory: Any, tmp_path: Path, consumer_db: str, victim: str
) -> None:
    pair = make_pair(server_factory, tmp_path, consumer_db, provider_env=SLOW)
    expected = big_dataset(pair.data / "exp1")
    publish(pair)
    pair.provider.cli("dataset", "broadcast", UID)
    transfer_id = pair.wait_synced(UID, states=("in_progress",))["transfer_id"]
    wait_for(lambda: len(delivered(pair, transfer_id)) >= 3, timeout=120)
    if victim == "consumer":
        pair.consumer.kill()  # SIGKILL: no cleanup
        done = delivered(pair, transfer_id)
    else:
        done = delivered(pair, transfer_id)
        pair.provider.kill()
        # the consumer keeps polling a provider that does not answer: state unchanged
        time.sleep(1.0)
        assert pair.consumer.client().synced_dataset(UID)["state"] == "in_progress"
    before = {rel: st for rel, st in landed(pair).items() if rel in done}
    assert len(before) >= 3
    time.sleep(0.5)
    (pair.consumer if victim == "consumer" else pair.provider).start()  # same home, db, port
    doc = pair.wait_synced(UID, timeout=240)
    assert doc["state"] == "complete", doc
    assert hash_tree(pair.inbox / "from-fac" / UID) == expected
    assert temporaries(pair.inbox) == []
    after = landed(pair)
    for rel, st in before.items():
        # same inode and modification time: a file verified before the kill was not sent again
        assert (after[rel].st_ino, after[rel].st_mtime_ns) == (st.st_ino, st.st_mtime_ns), rel
    history = [h["to"] for h in pair.consumer.cli_json("dataset", "history", UID)]
    assert history[-2:] == ["checking_integrity", "complete"]
