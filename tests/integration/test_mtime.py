"""Transfers keep each file's modification time (as rsync -t and rclone do): local
folders, SFTP against a real sshd, an HTTP source that tells none, resumed large
files, move and the mover's zip; the job_files migration that adds the column."""

from __future__ import annotations

import hashlib
import io
import os
import time
import zipfile
from pathlib import Path

from tests.integration.test_remote_protocols import add_sftp
from tests.support.httpfiles import FileServer
from tests.support.server import Server
from tests.support.sshd import SSHServer
from tests.support.trees import temporaries

MiB = 1024 * 1024
# 2020-02-03 04:05:06.123456789 UTC, and others: exact to the nanosecond
OLD = 1580702706_123456789


def dated(path: Path, data: bytes, mtime_ns: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, ns=(mtime_ns, mtime_ns))


def mtime(path: Path) -> int:
    return path.stat().st_mtime_ns


def small_tree(root: Path) -> dict[str, int]:
    """Files of several sizes (a grouped small file, one too large for a group, an
    empty one) in nested folders, each with its own old time; {path: mtime_ns}."""
    want = {
        "a.txt": OLD,
        "empty": OLD + 1,
        "sub/b.bin": OLD + 86400 * 10**9 + 7,
        "sub/deeper/c.bin": 946684800_000000001,  # 2000-01-01
        "sub/two-mib.bin": OLD - 5 * 10**9,
    }
    sizes = {"empty": 0, "sub/two-mib.bin": 2 * MiB}
    for rel, ns in want.items():
        dated(root / rel, os.urandom(sizes.get(rel, 1000)), ns)
    return want


def test_local_to_local_keeps_mtime_copy_single_move_sync(server: Server, tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    dst.mkdir()
    want = small_tree(src / "tree")
    server.cli("endpoint", "add", "src", str(src))
    server.cli("endpoint", "add", "dst", str(dst))

    doc = server.cli_json("transfer", "src:tree", "dst:copy", "--wait")
    assert doc["state"] == "succeeded", doc
    assert {rel: mtime(dst / "copy" / rel) for rel in want} == want
    with server.client() as c:
        rows = c.job_files(doc["job_id"])
    assert {r["path"]: r["mtime"] for r in rows} == want

    # a single file
    doc = server.cli_json("transfer", "src:tree/a.txt", "dst:one.txt", "--wait")
    assert doc["state"] == "succeeded", doc
    assert mtime(dst / "one.txt") == OLD

    # sync: an identical file is left alone (its time too), a changed one gets the source's
    os.utime(dst / "copy" / "a.txt", ns=(OLD + 42, OLD + 42))
    dated(src / "tree" / "sub" / "b.bin", b"changed", OLD + 99)
    doc = server.cli_json("transfer", "src:tree", "dst:copy", "--mode", "sync", "--wait")
    assert doc["state"] == "succeeded", doc
    assert mtime(dst / "copy" / "a.txt") == OLD + 42
    assert mtime(dst / "copy" / "sub" / "b.bin") == OLD + 99

    # move
    doc = server.cli_json("transfer", "src:tree", "dst:moved", "--mode", "move", "--wait")
    assert doc["state"] == "succeeded", doc
    want["sub/b.bin"] = OLD + 99
    assert {rel: mtime(dst / "moved" / rel) for rel in want} == want
    assert not (src / "tree").exists()
    assert temporaries(dst) == []


def test_source_without_mtime_sets_none(server: Server, tmp_path: Path) -> None:
    """An HTTP source without Last-Modified: nothing stored, the copy has its own time."""
    www, dst = tmp_path / "www", tmp_path / "dst"
    dst.mkdir()
    dated(www / "f.bin", b"x" * 5000, OLD)
    files = FileServer(www).start()
    try:
        server.cli("endpoint", "add", "web", files.url)
        server.cli("endpoint", "add", "dst", str(dst))
        before = time.time_ns() - 10**9
        doc = server.cli_json("transfer", "web:f.bin", "dst:f.bin", "--wait")
    finally:
        files.stop()
    assert doc["state"] == "succeeded", doc
    assert mtime(dst / "f.bin") >= before
    with server.client() as c:
        assert [r["mtime"] for r in c.job_files(doc["job_id"])] == [None]


def test_local_to_sftp_and_back(server: Server, sshd: SSHServer, tmp_path: Path) -> None:
    """SFTP (OpenSSH: SFTP v3) keeps whole seconds: the times arrive cut to the second."""
    src, root, back = tmp_path / "src", tmp_path / "sftp-root", tmp_path / "back"
    root.mkdir()
    back.mkdir()
    want = small_tree(src / "tree")
    seconds = {rel: ns // 10**9 * 10**9 for rel, ns in want.items()}
    server.cli("endpoint", "add", "src", str(src))
    server.cli("endpoint", "add", "back", str(back))
    add_sftp(server, "remote", sshd, root)

    doc = server.cli_json("transfer", "src:tree", "remote:tree", "--wait")
    assert doc["state"] == "succeeded", doc
    assert {rel: mtime(root / "tree" / rel) for rel in want} == seconds
    doc = server.cli_json("transfer", "src:tree/a.txt", "remote:single.txt", "--wait")
    assert doc["state"] == "succeeded", doc
    assert mtime(root / "single.txt") == seconds["a.txt"]

    # SFTP as the source: the listing's times (and a single file's stat)
    for rel, ns in want.items():  # sub-second parts the v3 listing cannot carry
        os.utime(root / "tree" / rel, ns=(ns, ns))
    doc = server.cli_json("transfer", "remote:tree", "back:tree", "--wait")
    assert doc["state"] == "succeeded", doc
    assert {rel: mtime(back / "tree" / rel) for rel in want} == seconds
    doc = server.cli_json("transfer", "remote:single.txt", "back:single.txt", "--wait")
    assert doc["state"] == "succeeded", doc
    assert mtime(back / "single.txt") == seconds["a.txt"]
    assert temporaries(root) == [] and temporaries(back) == []


def test_resumed_large_file_keeps_mtime(server_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from tests.integration.test_resume import job_result, stop_when_partial

    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    size = 64 * MiB  # large enough for the pipelined copy
    with open(src / "big.bin", "wb") as f:
        for i in range(size // MiB):
            f.write(i.to_bytes(8, "big") * (MiB // 8))
    os.utime(src / "big.bin", ns=(OLD, OLD))
    env = {
        "DATAFERRY_TRANSFER__CHUNK_SIZE": "4096",
        "DATAFERRY_TRANSFER__RESUME_MIN_BYTES": str(MiB),
    }
    server: Server = server_factory("a", env=env)
    server.cli("endpoint", "add", "src", str(src))
    server.cli("endpoint", "add", "dst", str(dst))
    job_id = server.cli_json("transfer", "src:big.bin", "dst:big.bin")["job_id"]
    partial = stop_when_partial(server, dst, MiB)
    assert 0 < partial < size
    del server.env["DATAFERRY_TRANSFER__CHUNK_SIZE"]
    restarted = server.start()
    doc = restarted.wait_job(job_id)
    assert doc["state"] == "succeeded", doc
    assert job_result(restarted, job_id)["bytes_resumed"] > 0
    assert mtime(dst / "big.bin") == OLD
    want = hashlib.sha256((src / "big.bin").read_bytes()).hexdigest()
    assert hashlib.sha256((dst / "big.bin").read_bytes()).hexdigest() == want


def test_mover_move_and_zip_keep_mtime(server: Server, tmp_path: Path) -> None:
    """The XML-RPC door's move: copied files keep their time, zip members their date."""
    from tests.integration.test_rpc import proxy, wait_status

    src, dst = tmp_path / "src", tmp_path / "dst"
    dst.mkdir()
    want = small_tree(src / "tree")
    server.cli("endpoint", "add", "src", str(src))
    server.cli("endpoint", "add", "dst", str(dst))
    p = proxy(server)
    doc = p.move(["src:tree"], "dst:out", False)
    assert wait_status(p.check_move_status, doc["id"])["status"] == "COMPLETED"
    assert {rel: mtime(dst / "out" / "tree" / rel) for rel in want} == want

    doc = p.move(["src:tree"], "dst:bundle.zip", True)
    assert wait_status(p.check_move_status, doc["id"])["status"] == "COMPLETED"
    with zipfile.ZipFile(io.BytesIO((dst / "bundle.zip").read_bytes())) as z:
        dates = {i.filename: i.date_time for i in z.infolist()}
    for rel, ns in want.items():
        local = time.localtime(ns // 10**9)
        assert dates[f"tree/{rel}"][:5] == local[:5], rel


def test_migration_adds_a_nullable_mtime_and_keeps_old_rows(settings) -> None:  # type: ignore[no-untyped-def]
    """0009 on a database planned before it: old rows keep their data and get no time
    (their copies get none set); downgrading drops the column and keeps the rows."""
    from alembic import command
    from sqlalchemy import column, insert, inspect, table

    from dataferry.app import init_db
    from dataferry.db import migrate
    from dataferry.db.base import UTCDateTime, utcnow
    from dataferry.db.engine import Database
    from dataferry.jobs.store import JobStore
    from dataferry.transfers.store import TransferStore

    init_db(settings)
    cfg = migrate.alembic_config(settings.database_url)
    command.downgrade(cfg, "0009_job_file_mtime-1")
    db = Database(settings.database_url)
    try:
        columns = {c["name"] for c in inspect(db.engine).get_columns("job_files")}
        assert "mtime" not in columns and "size" in columns
        job = JobStore(db).create("transfer", {})
        # the table as it was before 0009
        names = ("job_id", "path", "size", "state", "checksum", "error")
        old_table = table("job_files", *map(column, names), column("updated", UTCDateTime()))
        row = {"job_id": job.id, "path": "old.bin", "size": 3, "state": "pending"}
        with db.session() as s:
            s.execute(
                insert(old_table), [{**row, "checksum": "", "error": "", "updated": utcnow()}]
            )
    finally:
        db.dispose()
    init_db(settings)  # brings it up to date again
    db = Database(settings.database_url)
    try:
        [old] = TransferStore(db).unfinished(job.id)
        assert (old.path, old.size, old.mtime) == ("old.bin", 3, None)
    finally:
        db.dispose()


def test_a_time_sftp_cannot_carry(server: Server, sshd: SSHServer, tmp_path: Path) -> None:
    """SFTP v3 carries times as 32-bit seconds (up to 2106-02-07). A file dated later
    (a camera with a wrong clock) still arrives, and gets the time of the copy, as on
    a destination that keeps no times; files with times it can carry keep theirs."""
    src, root = tmp_path / "src", tmp_path / "sftp-root"
    root.mkdir()
    late = (2200 - 1970) * 365 * 86400 * 10**9  # about 2199
    dated(src / "tree" / "late.bin", b"from the future", late)
    dated(src / "tree" / "big-late.bin", os.urandom(2 * MiB), late)
    dated(src / "tree" / "fine.txt", b"fine", OLD)
    server.cli("endpoint", "add", "src", str(src))
    add_sftp(server, "remote", sshd, root)
    before = time.time_ns()
    doc = server.cli_json("transfer", "src:tree", "remote:tree", "--wait")
    assert doc["state"] == "succeeded", doc
    assert (root / "tree" / "late.bin").read_bytes() == b"from the future"
    for name in ("late.bin", "big-late.bin"):
        assert before - 10**9 <= mtime(root / "tree" / name) <= time.time_ns(), name
    assert mtime(root / "tree" / "fine.txt") == OLD // 10**9 * 10**9
