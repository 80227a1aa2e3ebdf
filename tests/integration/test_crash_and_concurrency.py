"""Durability: kill -9 mid-transfer and resume; two servers on one database."""

from __future__ import annotations

import os
from pathlib import Path

from tests.support.server import Server
from tests.support.trees import hash_tree, temporaries
from tests.support.waiting import wait_for

MiB = 1024 * 1024


def test_kill_9_mid_transfer_resumes_without_recopying(server_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    src, dst = tmp_path / "src", tmp_path / "dst"
    (src / "big").mkdir(parents=True)
    dst.mkdir()
    # 96 files of 5 MiB around one 40 MiB file: 520 MiB in all.
    chunk = os.urandom(5 * MiB)
    for i in range(96):
        (src / "big" / f"part-{i:03d}.bin").write_bytes(i.to_bytes(4, "big") + chunk)
    (src / "big" / "part-050-large.bin").write_bytes(os.urandom(40 * MiB))
    expected = hash_tree(src / "big")
    env = {"DATAFERRY_TRANSFER__CONCURRENCY": "1", "DATAFERRY_TRANSFER__CHUNK_SIZE": "262144"}
    server: Server = server_factory("a", env=env)
    server.cli("endpoint", "add", "src", str(src))
    server.cli("endpoint", "add", "dst", str(dst))
    job_id = server.cli_json("transfer", "src:big", "dst:big")["job_id"]

    with server.client() as c:

        def some_done() -> list[dict[str, object]]:
            done = [f for f in c.job_files(job_id) if f["state"] == "done"]
            return done if len(done) >= 3 else []

        before = wait_for(some_done, every=0.02)
    server.kill()  # SIGKILL: no cleanup, no goodbye
    verified = {f["path"]: os.stat(dst / "big" / str(f["path"])) for f in before}

    restarted = server.start()  # same home, database and port
    try:
        doc = restarted.wait_job(job_id, timeout=120)
        assert doc["state"] == "succeeded", doc
        assert doc["attempts"] == 2, doc  # the killed attempt, then the resumed one
        assert hash_tree(dst / "big") == expected
        assert temporaries(dst) == []
        for path, st in verified.items():
            now = os.stat(dst / "big" / path)
            # same inode and mtime: it was not written again
            assert (now.st_ino, now.st_mtime_ns) == (st.st_ino, st.st_mtime_ns), path
        with restarted.client() as c:
            history = c.request("GET", f"/api/v1/jobs/{job_id}/detail")["attempt_history"]
        assert [h["outcome"] for h in history] == ["lease_expired", "succeeded"]
    finally:
        restarted.kill()


def test_two_servers_never_run_one_job_twice(server_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    for i in range(60):
        (src / f"f{i}").write_bytes(os.urandom(20_000))
    a: Server = server_factory("a")
    b: Server = server_factory("b")
    a.cli("endpoint", "add", "src", str(src))
    a.cli("endpoint", "add", "dst", str(dst))
    ids = []
    with a.client() as ca, b.client() as cb:
        for i in range(60):
            c = ca if i % 2 else cb
            ids.append(c.transfer(f"src:f{i}", f"dst:out{i}")["job_id"])
    docs = [a.wait_job(i) for i in ids]
    assert {d["state"] for d in docs} == {"succeeded"}
    assert {d["attempts"] for d in docs} == {1}
    workers = set()
    with a.client() as c:
        for job_id in ids:
            detail = c.request("GET", f"/api/v1/jobs/{job_id}/detail")
            assert len(detail["attempt_history"]) == 1, detail
            workers.add(detail["worker"].split("/")[0])
    assert len(workers) == 2, workers  # both servers took part
    assert hash_tree(dst) == {
        f"out{i}": h for i, h in ((int(k[1:]), v) for k, v in hash_tree(src).items())
    }
