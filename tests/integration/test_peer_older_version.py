"""A new instance delivering to one that runs the release before modification times
(the real code of that release, taken from this repository's history): the older
peer has no ``GET /api/v1/peer/hello`` (404), so the sender sends it no optional
field (``mtime``) and no request of the delivery is refused; the files arrive whole,
with the time of the copy as they always did there."""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
from io import BytesIO
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.test_mtime import OLD, MiB, dated, mtime
from tests.support.pair import make_pair
from tests.support.trees import hash_tree, temporaries

# The last commit before modification times reached the peer protocol.
BEFORE_MTIME = "f1baddd"
ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.database_agnostic


def older_release(folder: Path) -> Path:
    """``src`` of the release before modification times, unpacked into ``folder``."""
    if not shutil.which("git") or not (ROOT / ".git").exists():
        pytest.skip("needs this repository's git history (a clone, not a source archive)")
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", BEFORE_MTIME, "src"],
        capture_output=True,
        check=False,
    )
    if archive.returncode != 0:
        pytest.skip(f"commit {BEFORE_MTIME} is not in this clone's history (a shallow clone?)")
    with tarfile.open(fileobj=BytesIO(archive.stdout)) as tar:
        tar.extractall(folder, filter="data")
    return folder / "src"


def test_delivery_to_an_older_peer_leaves_mtime_out(server_factory: Any, tmp_path: Path) -> None:
    old_src = older_release(tmp_path / "older")
    old_db = tmp_path / "older-db"
    old_db.mkdir()
    pair = make_pair(
        server_factory,
        tmp_path,
        f"sqlite:///{old_db / 'dataferry.db'}",
        consumer_env={"PYTHONPATH": str(old_src)},
        consumer_log_level="info",  # its access log shows what the sender asked
    )
    # the receiver really is the older code: it has no job pruning route
    old_route = httpx.post(f"{pair.consumer.url}/api/v1/jobs/prune", json={"older_than_days": 1})
    assert old_route.status_code in (404, 405), old_route.text
    tree = pair.data / "set"
    want: dict[str, bytes] = {}
    for i in range(30):  # small files: sent in batches
        want[f"f{i:02}.txt"] = os.urandom(1000 + i)
    want["big/two.bin"] = os.urandom(2 * MiB)  # a held file: PUT with commit
    want["big/ten.bin"] = os.urandom(10 * MiB)  # streamed, then POST /commit
    for rel, data in want.items():
        dated(tree / rel, data, OLD)
    pair.provider.cli("endpoint", "add", "home-inbox", "dataferry://home/inbox/pushed")
    job = pair.provider.cli_json("transfer", "data:set", "home-inbox:")
    doc = pair.provider.wait_job(job["job_id"])
    assert doc["state"] == "succeeded", doc
    assert hash_tree(pair.inbox / "pushed") == hash_tree(tree)
    assert all(mtime(pair.inbox / "pushed" / rel) != OLD for rel in want)  # as it was
    assert temporaries(pair.inbox) == []
    # one hello, answered 404; then no request was refused (422) and none carried a time
    peer = pair.consumer.requests("/api/v1/peer/")
    assert [r for r in peer if r[1] == "/api/v1/peer/hello"] == [
        ("GET", "/api/v1/peer/hello", 404)
    ], peer
    assert [r for r in peer if r[2] == 422] == [], peer
    assert not any("mtime" in target for _, target, _ in peer), peer
    methods = {(m, t.partition("?")[0].rpartition("/inbox/")[2]) for m, t, _ in peer}
    # every way of putting a file in place was used: batch, PUT with commit, POST /commit
    assert {("POST", "uploads/batch"), ("PUT", "uploads"), ("POST", "commit")} <= methods
