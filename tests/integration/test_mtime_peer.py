"""Modification times over the peer file protocol: delivery between two real
instances both ways (batch, PUT with commit, POST /commit; listing and stat), and the
routes' strict checking of ``mtime``."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_mtime import OLD, MiB, dated, mtime, small_tree
from tests.support.pair import TOKEN
from tests.support.server import Server
from tests.support.trees import temporaries


def peer_tree(root: Path) -> dict[str, int]:
    """small_tree plus files for every way the peer protocol puts one in place: a
    held file of 2 MiB (PUT with commit) and one larger than a block (streamed PUTs,
    then POST /commit)."""
    want = small_tree(root)
    dated(root / "big" / "ten-mib.bin", os.urandom(10 * MiB), OLD + 123)
    want["big/ten-mib.bin"] = OLD + 123
    return want


def test_peer_protocol_both_ways_keeps_mtime(
    server_factory: Any, tmp_path: Path, consumer_db: str
) -> None:
    from tests.support.pair import PROVIDER, make_pair

    pair = make_pair(server_factory, tmp_path, consumer_db, consumer_log_level="info")
    want = peer_tree(pair.data / "set")
    # the provider writes into the consumer's endpoint: batch, PUT+commit, POST /commit
    pair.provider.cli("endpoint", "add", "home-inbox", "dataferry://home/inbox/pushed")
    job = pair.provider.cli_json("transfer", "data:set", "home-inbox:")
    doc = pair.provider.wait_job(job["job_id"])
    assert doc["state"] == "succeeded", doc
    assert {rel: mtime(pair.inbox / "pushed" / rel) for rel in want} == want
    # the job's copy threads shared one question of what the peer takes
    hello = ("GET", "/api/v1/peer/hello", 200)
    assert pair.consumer.requests("/api/v1/peer/hello") == [hello]
    job = pair.provider.cli_json("transfer", "data:set/a.txt", "home-inbox:single.txt")
    assert pair.provider.wait_job(job["job_id"])["state"] == "succeeded"
    assert mtime(pair.inbox / "pushed" / "single.txt") == OLD
    assert pair.consumer.requests("/api/v1/peer/hello") == [hello, hello]  # a job asks anew
    assert temporaries(pair.inbox) == []

    # the consumer reads the provider's endpoint: the listing (and stat) carry the times
    pair.provider.cli("endpoint", "remove", "data")
    pair.provider.cli("endpoint", "add", "data", str(pair.data), "-o", "peer_read=home")
    pair.consumer.cli("endpoint", "add", "fac-data", f"dataferry://{PROVIDER}/data/set")
    deadline = time.monotonic() + 30  # a peer's view of endpoint options is cached 2 s
    while (
        r := pair.consumer.cli("transfer", "fac-data:", "inbox:pulled", "--json", check=False)
    ).returncode:
        assert "may not read" in r.stderr and time.monotonic() < deadline, r.stderr
        time.sleep(0.3)
    doc = pair.consumer.wait_job(json.loads(r.stdout)["job_id"])
    assert doc["state"] == "succeeded", doc
    assert {rel: mtime(pair.inbox / "pulled" / rel) for rel in want} == want
    job = pair.consumer.cli_json("transfer", "fac-data:sub/b.bin", "inbox:b.bin")
    assert pair.consumer.wait_job(job["job_id"])["state"] == "succeeded"
    assert mtime(pair.inbox / "b.bin") == want["sub/b.bin"]


@pytest.fixture
def host(server_factory: Any, tmp_path: Path) -> tuple[Server, Path]:
    """One server with site 'fac' registered, which may read and write 'shared'."""
    shared = tmp_path / "shared"
    shared.mkdir()
    srv: Server = server_factory("host", env={"DATAFERRY_DATASETS__SITE_NAME": "home"})
    srv.cli("endpoint", "add", "shared", str(shared), "-o", "peer_read=fac", "-o", "peer_write=fac")
    srv.cli("site", "add", "fac", "http://127.0.0.1:9", "--token", TOKEN, "--role", "provider")
    return srv, shared


def files_and_times(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``root`` (temporaries too) with its bytes and time, and every folder."""
    out: dict[str, tuple[bytes, int]] = {}
    for folder, dirs, names in os.walk(root):
        for d in dirs:
            out[(Path(folder) / d).relative_to(root).as_posix() + "/"] = (b"", 0)
        for n in names:
            p = Path(folder) / n
            out[p.relative_to(root).as_posix()] = (p.read_bytes(), mtime(p))
    return out


BAD_MTIMES: list[Any] = [-1, 1.5, float(OLD), "1580702706", True, None, 2**63, 10**30, [OLD]]


def test_peer_routes_take_mtime_strictly(host: tuple[Server, Path]) -> None:
    """``mtime`` in a batch header, a commit body and a PUT with commit: whole ns since
    1970; anything else (negative, a float, NaN, text, a boolean, too large) is a 422
    and nothing is written or put in place. A good one is the file's time once in place;
    stat and list tell it."""
    from dataferry.datasets import receipts
    from dataferry.datasets.peerfs import BATCH_TYPE, batch_body
    from dataferry.endpoints.backends.local import LocalEndpointFS
    from tests.integration.test_peer_files import api

    srv, shared = host
    headers = {"Content-Type": BATCH_TYPE}
    held = b"held bytes"
    good_a = {"upload": "b/.a.1.dftmp", "path": "b/a.bin", "size": 3, "data": True, "mtime": OLD}
    item = {"upload": "b/.c.1.dftmp", "path": "b/c.bin", "size": 2, "data": True}
    with api(srv) as c:
        assert c.put("/shared/uploads", params={"path": "h/.h.1.dftmp"}, content=held).is_success
        before = files_and_times(shared)
        for bad in [*BAD_MTIMES, float("nan")]:
            if bad is None:
                continue  # null is "no time" in a header, as it is in a commit body
            body = batch_body([good_a, {**item, "mtime": bad}], [b"abc", b"de"])
            r = c.post("/shared/uploads/batch", content=body, headers=headers)
            assert r.status_code == 422, (bad, r.status_code, r.text)
            assert "'mtime'" in r.json()["detail"], r.text
            assert files_and_times(shared) == before, bad
            commit = {"upload": "h/.h.1.dftmp", "path": "h/h.bin", "mtime": bad}
            r = c.post(
                "/shared/commit",
                content=json.dumps(commit),
                headers={"Content-Type": "application/json"},
            )
            if bad is not None:
                assert r.status_code == 422, (bad, r.status_code, r.text)
                assert r.json()["detail"].startswith("mtime: "), r.text
            assert files_and_times(shared) == before, bad
        for bad in ("-1", "1.5", "1e9", " 1", "nan", str(2**63), "9" * 40, ""):
            params = {"path": "p/.p.1.dftmp", "commit": "p/p.bin", "mtime": bad}
            r = c.put("/shared/uploads", params=params, content=b"xyz")
            assert r.status_code == 422, (bad, r.status_code, r.text)
            assert files_and_times(shared) == before, bad
        # mtime goes with a commit only
        r = c.put("/shared/uploads", params={"path": "p/.p.1.dftmp", "mtime": OLD}, content=b"x")
        assert r.status_code == 422 and "commit" in r.text, r.text
        assert files_and_times(shared) == before

        # good ones: a batch (bytes in it, and one uploaded before), a commit, a PUT
        body = batch_body(
            [
                good_a,
                {**item, "mtime": None},
                {
                    "upload": "h/.h.1.dftmp",
                    "path": "h/h.bin",
                    "size": len(held),
                    "data": False,
                    "mtime": OLD + 5,
                },
            ],
            [b"abc", b"de"],
        )
        r = c.post("/shared/uploads/batch", content=body, headers=headers)
        assert r.status_code == 200, r.text
        assert mtime(shared / "b" / "a.bin") == OLD and mtime(shared / "h" / "h.bin") == OLD + 5
        assert mtime(shared / "b" / "c.bin") > time.time_ns() - 600 * 10**9  # none: its own
        assert c.put("/shared/uploads", params={"path": "d/.d.1.dftmp"}, content=b"d").is_success
        r = c.post("/shared/commit", json={"upload": "d/.d.1.dftmp", "path": "d/d", "mtime": 7})
        assert r.status_code == 200, r.text
        assert mtime(shared / "d" / "d") == 7
        params = {"path": "p/.p.1.dftmp", "commit": "p/p.bin", "mtime": str(OLD + 9)}
        assert c.put("/shared/uploads", params=params, content=b"xyz").is_success
        assert mtime(shared / "p" / "p.bin") == OLD + 9
        st = c.get("/shared/stat", params={"path": "p/p.bin"}).json()
        assert st == {"path": "p/p.bin", "type": "file", "size": 3, "mtime": OLD + 9}
        big = os.urandom(5 * MiB + 3)  # more than one write block: streamed, then finished
        params = {"path": "p/.big.1.dftmp", "commit": "p/big.bin", "mtime": str(OLD + 11)}
        assert c.put("/shared/uploads", params=params, content=big).is_success
        assert mtime(shared / "p" / "big.bin") == OLD + 11
        listed = c.get("/shared/list", params={"path": "", "recursive": "true"}).json()
        times = {e["path"]: e.get("mtime") for e in listed["entries"]}
        assert times["b/a.bin"] == OLD and times["d/d"] == 7 and times["b"] is None
    assert temporaries(shared) == []
    # the receipts of what arrived still count: the time was set before they were taken
    # (or, for an upload committed later, they were kept across it)
    fs = LocalEndpointFS("shared", str(shared), {})
    for rel, data in (
        ("b/a.bin", b"abc"),
        ("h/h.bin", held),
        ("d/d", b"d"),
        ("p/p.bin", b"xyz"),
        ("p/big.bin", big),
    ):
        assert receipts.recorded(fs, str(shared / rel)) == hashlib.sha256(data).hexdigest(), rel
