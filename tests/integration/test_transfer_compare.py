"""``compare``: how sync (and ``overwrite: if-different``) tells a file is already
there: by checksum (reads both sides) or by size and modification time (reads neither)."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from tests.integration.test_remote_protocols import add_remote
from tests.support.server import Server

T = 1_600_000_000_123_456_789  # 2020-09-13, with nanoseconds


def states(server: Server, job_id: int) -> dict[str, str]:
    with server.client() as c:
        return {f["path"]: f["state"] for f in c.job_files(job_id)}


@pytest.fixture
def folders(server: Server, tmp_path: Path) -> tuple[Path, Path]:
    src, dst = tmp_path / "src", tmp_path / "dst"
    for i in range(4):
        f = src / "run" / "sub" / f"{i}.txt"
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(f"file {i}")
        os.utime(f, ns=(T + i * 10**9, T + i * 10**9))
    dst.mkdir()
    server.cli("endpoint", "add", "src", str(src))
    server.cli("endpoint", "add", "dst", str(dst))
    return src, dst


def sync(server: Server, dest: str, *extra: str) -> dict[str, str]:
    doc = server.cli_json("transfer", "src:run", dest, "--mode", "sync", *extra, "--wait")
    assert doc["state"] == "succeeded", doc
    return states(server, doc["job_id"])


def test_size_and_mtime_skip_without_reading_and_checksum_reads(
    server: Server, folders: tuple[Path, Path]
) -> None:
    src, dst = folders
    first = server.cli_json("transfer", "src:run", "dst:out", "--wait")
    assert first["state"] == "succeeded", first
    # the same size and time, other bytes (as if a disk had flipped them): only a
    # checksum sees it
    rotten = dst / "out" / "sub" / "0.txt"
    rotten.write_text("FILE 0")
    os.utime(rotten, ns=(T, T))
    quick = sync(server, "dst:out", "--compare", "size-mtime")
    assert set(quick.values()) == {"skipped"}
    assert rotten.read_text() == "FILE 0"  # not read, not replaced
    careful = sync(server, "dst:out")
    assert careful["sub/0.txt"] == "done" and rotten.read_text() == "file 0"

    # a source file touched (same bytes, a new time): by time it is copied again
    touched = src / "run" / "sub" / "1.txt"
    os.utime(touched, ns=(T + 99 * 10**9, T + 99 * 10**9))
    quick = sync(server, "dst:out", "--compare", "size-mtime")
    assert quick["sub/1.txt"] == "done" and quick["sub/2.txt"] == "skipped"
    assert (dst / "out" / "sub" / "1.txt").stat().st_mtime_ns == T + 99 * 10**9


@pytest.mark.parametrize("protocol", ["sftp", "s3"])
def test_size_and_mtime_on_remotes(
    request: pytest.FixtureRequest,
    server: Server,
    folders: tuple[Path, Path],
    tmp_path: Path,
    protocol: str,
) -> None:
    # SFTP keeps whole seconds: compared to the second; S3 keeps no times on
    # objects: compared by checksum instead
    add_remote(request, server, protocol, tmp_path)
    first = server.cli_json("transfer", "src:run", "remote:r", "--wait")
    assert first["state"] == "succeeded", first
    again = sync(server, "remote:r", "--compare", "size-mtime")
    assert set(again.values()) == {"skipped"}, again


def test_a_bad_compare_is_refused(server: Server, folders: tuple[Path, Path]) -> None:
    body = {"source": "src:run", "destination": "dst:x", "mode": "sync", "compare": "mtime"}
    r = httpx.post(f"{server.url}/api/v1/transfers", json=body)
    assert r.status_code == 422 and "checksum, size-mtime" in r.text
    with server.client() as c:
        assert c.jobs()["total"] == 0
