"""Byte-level resume: a large file interrupted mid-copy continues from its partial
temporary instead of restarting (local folders here; SFTP and HTTP in their modules)."""

from __future__ import annotations

import hashlib
import itertools
import os
import signal
import time
from pathlib import Path
from typing import Any

from tests.support.server import Server
from tests.support.trees import temporaries

MiB = 1024 * 1024


def stop_when_partial(server: Server, folder: Path, least: int, timeout: float = 60) -> int:
    """Freeze the server (SIGSTOP) as soon as a temporary under ``folder`` holds at least
    ``least`` bytes, then kill it; returns the partial temporary's size."""
    deadline = time.monotonic() + timeout
    assert server.proc is not None
    while time.monotonic() < deadline:
        for tmp in temporaries(folder):
            try:
                if os.path.getsize(tmp) >= least:
                    server.proc.send_signal(signal.SIGSTOP)
                    server.kill()
                    return os.path.getsize(tmp)
            except FileNotFoundError:
                pass
        time.sleep(0.001)
    raise AssertionError("no partial temporary appeared in time")


def job_result(server: Server, job_id: int) -> dict[str, Any]:
    with server.client() as c:
        detail: dict[str, Any] = c.request("GET", f"/api/v1/jobs/{job_id}/detail")
    return dict(detail["result"])


def test_local_large_file_resumes_from_partial_bytes(server_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    size = 256 * MiB
    with open(src / "big.bin", "wb") as f:
        block = os.urandom(MiB)
        for i in range(size // MiB):
            f.write(i.to_bytes(8, "big") + block[8:])
    want = hashlib.sha256((src / "big.bin").read_bytes()).hexdigest()
    env = {
        "DATAFERRY_TRANSFER__CHUNK_SIZE": "4096",  # many small writes: a slow copy to catch
        "DATAFERRY_TRANSFER__RESUME_MIN_BYTES": str(MiB),
    }
    server: Server = server_factory("a", env=env)
    server.cli("endpoint", "add", "src", str(src))
    server.cli("endpoint", "add", "dst", str(dst))
    job_id = server.cli_json("transfer", "src:big.bin", "dst:big.bin")["job_id"]
    partial = stop_when_partial(server, dst, MiB)
    assert 0 < partial < size

    # The rest at the usual block size: the small one was only there to stop mid-copy.
    del server.env["DATAFERRY_TRANSFER__CHUNK_SIZE"]
    restarted = server.start()
    doc = restarted.wait_job(job_id)
    assert doc["state"] == "succeeded", doc
    assert doc["bytes_done"] == doc["bytes_total"] == size
    result = job_result(restarted, job_id)
    # Only what was missing was read from the source after the restart.
    assert result["bytes_resumed"] >= partial - 64 * 1024, (partial, result, doc)
    assert result["bytes_read"] == size - result["bytes_resumed"], (partial, result)
    assert hashlib.sha256((dst / "big.bin").read_bytes()).hexdigest() == want
    with restarted.client() as c:
        files = c.job_files(job_id)
    assert files[0]["checksum"] == f"sha256:{want}"
    assert temporaries(dst) == []


def test_partial_that_no_longer_matches_the_source_restarts(core, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from dataferry.transfers.copy import resume_point, temporary_name
    from dataferry.transfers.request import Checksum

    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    data = os.urandom(3 * MiB)
    (src / "f").write_bytes(data)
    core.endpoints.add("s", str(src))
    core.endpoints.add("d", str(dst))
    s, d = core.endpoints.open("s"), core.endpoints.open("d")
    tmp = temporary_name(d.full("f"), 7)
    with open(tmp, "wb") as f:
        f.write(data[:MiB])
    offset, hasher = resume_point(s, s.full("f"), d, tmp, Checksum.SHA256, 65536, len(data))
    assert offset == MiB
    assert hasher.hexdigest() == hashlib.sha256(data[:MiB]).hexdigest()
    with open(tmp, "r+b") as f:  # a torn tail: the partial file is not the source's prefix
        f.seek(MiB - 10)
        f.write(b"\0" * 10)
    offset, _ = resume_point(s, s.full("f"), d, tmp, Checksum.SHA256, 65536, len(data))
    assert offset == 0


def test_expected_checksum_mismatch_fails_and_leaves_nothing(
    server: Server, tmp_path: Path
) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    (src / "a.txt").write_bytes(b"hello")
    server.cli("endpoint", "add", "src", str(src))
    server.cli("endpoint", "add", "dst", str(dst))
    good = "sha256:" + hashlib.sha256(b"hello").hexdigest()
    doc = server.cli_json(
        "transfer", "src:a.txt", "dst:a.txt", "--expected-checksum", good, "--wait"
    )
    assert doc["state"] == "succeeded", doc
    bad = "sha256:" + "0" * 64
    doc = server.cli_json(
        "transfer", "src:a.txt", "dst:b.txt", "--expected-checksum", bad, "--wait", check=False
    )
    assert doc["state"] == "failed" and "differs from the expected" in doc["error"], doc
    assert not (dst / "b.txt").exists() and temporaries(dst) == []
    result = server.cli(
        "transfer", "src:a.txt", "dst:c", "--expected-checksum", "sha256:xyz", check=False
    )
    assert result.returncode == 1 and "64 hex digits" in result.stderr
    (src / "folder").mkdir()
    result = server.cli("transfer", "src:folder", "dst:f", "--expected-checksum", good, check=False)
    assert result.returncode == 1 and "single file" in result.stderr


def test_large_copy_starts_writeback_of_every_block_it_writes(core, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A pipelined copy (resumed half-way here) asks the destination to start writing
    each block to disk as it goes, covering exactly the bytes it writes, and the
    result is the source, synced and hashed whole."""
    from dataferry.transfers.copy import PIPELINE_MIN_BYTES, temporary_name, write_temporary
    from dataferry.transfers.request import Checksum

    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    data = os.urandom(PIPELINE_MIN_BYTES + 8 * MiB)
    (src / "f").write_bytes(data)
    core.endpoints.add("s", str(src))
    core.endpoints.add("d", str(dst))
    s, d = core.endpoints.open("s"), core.endpoints.open("d")
    half = 5 * MiB
    with open(temporary_name(d.full("f"), 9), "wb") as f:
        f.write(data[:half])
    calls: list[tuple[int, int]] = []
    real = d.start_writeback

    def recording(fobj, offset: int, length: int) -> None:  # type: ignore[no-untyped-def]
        calls.append((offset, length))
        real(fobj, offset, length)

    d.start_writeback = recording
    item = write_temporary(
        s,
        s.full("f"),
        d,
        d.full("f"),
        job_id=9,
        algo=Checksum.SHA256,
        chunk=4 * MiB,
        on_bytes=lambda n: None,
        size_hint=len(data),
        resume=True,
    )
    assert item.resumed_from == half and item.size == len(data)
    assert item.checksum == "sha256:" + hashlib.sha256(data).hexdigest()
    assert calls[0][0] == half
    assert all(a + n == b for (a, n), (b, _) in itertools.pairwise(calls))
    assert calls[-1][0] + calls[-1][1] == len(data)
    with open(item.tmp, "rb") as back:
        assert back.read() == data
