"""``compare``: how sync (and ``overwrite: if-different``) tells a file is already
there: by checksum (reads both sides) or by size and modification time (reads neither)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.test_mtime import MiB, dated, mtime
from tests.integration.test_remote_protocols import add_remote
from tests.support.server import Server
from tests.support.trees import hash_tree, temporaries

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


def test_size_and_mtime_into_another_instance(
    server_factory: Any, tmp_path: Path, consumer_db: str
) -> None:
    """The destination is a peer's endpoint (``dataferry://``): the times it keeps are
    the source's, so a second sync takes nothing and reads nothing; a file changed at
    the source, or whose copy there has another time, is taken again."""
    from tests.integration.test_resume import job_result
    from tests.support.pair import make_pair

    pair = make_pair(server_factory, tmp_path, consumer_db, consumer_log_level="info")
    run = pair.data / "run"
    sizes = {"sub/0.txt": 10, "sub/1.txt": 11, "sub/2.txt": 12, "sub/3.txt": 13}
    sizes |= {"big/held.bin": 2 * MiB, "big/streamed.bin": 9 * MiB}  # PUT+commit, POST /commit
    for n, (rel, size) in enumerate(sizes.items()):
        dated(run / rel, os.urandom(size), T + n * 10**9)
    pair.provider.cli("endpoint", "add", "home-inbox", "dataferry://home/inbox/out")
    out = pair.inbox / "out"

    def sync(*extra: str) -> tuple[dict[str, str], dict[str, Any]]:
        doc = pair.provider.cli_json(
            "transfer", "data:run", "home-inbox:", "--mode", "sync", *extra, "--wait"
        )
        assert doc["state"] == "succeeded", doc
        return states(pair.provider, doc["job_id"]), job_result(pair.provider, doc["job_id"])

    first, _ = sync("--compare", "size-mtime")
    assert set(first.values()) == {"done"} and hash_tree(out) == hash_tree(run)
    assert {rel: mtime(out / rel) for rel in sizes} == {rel: mtime(run / rel) for rel in sizes}

    # the same size and time, other bytes: only a checksum would see it
    rotten = out / "sub" / "0.txt"
    rotten.write_bytes(b"X" * 10)
    os.utime(rotten, ns=(T, T))
    reads_before = len(pair.consumer.requests("/api/v1/peer/endpoints/inbox/files"))
    stats_before = len(pair.consumer.requests("/api/v1/peer/endpoints/inbox/stat"))
    quick, result = sync("--compare", "size-mtime")
    # one stat of each destination file tells both that it is there and its size and time
    # (was two), besides the three the submit's checks of the destination make
    stats = len(pair.consumer.requests("/api/v1/peer/endpoints/inbox/stat")) - stats_before
    assert stats == len(sizes) + 3, stats
    assert set(quick.values()) == {"skipped"}, quick
    assert result["copied"] == 0 and result["bytes_read"] == 0, result
    assert rotten.read_bytes() == b"X" * 10  # neither read nor replaced
    assert len(pair.consumer.requests("/api/v1/peer/endpoints/inbox/files")) == reads_before

    # at the source: one file touched (same bytes, a new time), one of a new size; at
    # the destination: a copy of the same size given another time
    touched, grown = run / "sub" / "1.txt", run / "big" / "held.bin"
    os.utime(touched, ns=(T + 99 * 10**9, T + 99 * 10**9))
    dated(grown, os.urandom(2 * MiB + 1), mtime(grown))
    retimed = out / "big" / "streamed.bin"
    os.utime(retimed, ns=(T + 7 * 10**9, T + 7 * 10**9))
    again, result = sync("--compare", "size-mtime")
    taken = {"sub/1.txt", "big/held.bin", "big/streamed.bin"}
    assert {rel for rel, state in again.items() if state == "done"} == taken, again
    assert {rel for rel, state in again.items() if state == "skipped"} == set(sizes) - taken
    assert result["bytes_read"] == 11 + 2 * MiB + 1 + 9 * MiB, result
    assert rotten.read_bytes() == b"X" * 10
    assert {rel: mtime(out / rel) for rel in taken} == {rel: mtime(run / rel) for rel in taken}
    assert {rel: (out / rel).read_bytes() for rel in taken} == {
        rel: (run / rel).read_bytes() for rel in taken
    }
    assert temporaries(pair.inbox) == []
