"""Mode ``check`` (rclone check, Globus's verify): compare a source with its copy and
say what differs, writing nothing. The job succeeds only when both sides hold the
same files; otherwise it fails, once (no retries: a difference is not a glitch), with
counts and per-file states naming each file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.test_remote_protocols import add_remote
from tests.support.server import Server

SOURCE = {"a.txt": "a", "same.txt": "same", "sub/b.txt": "b", "sub/deep/c.txt": "c"}


def write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in root.rglob("*")
        if p.is_file()
    }


def states(server: Server, job_id: int) -> dict[str, str]:
    with server.client() as c:
        return {f["path"]: f["state"] for f in c.job_files(job_id)}


@pytest.fixture
def sides(server: Server, tmp_path: Path) -> tuple[Path, Path]:
    src, dst = tmp_path / "src" / "run", tmp_path / "dst" / "copy"
    write(src, SOURCE)
    write(dst, SOURCE)
    server.cli("endpoint", "add", "src", str(tmp_path / "src"))
    # a check only reads: a read-only copy can be checked
    server.cli("endpoint", "add", "dst", str(tmp_path / "dst"), "-o", "read_only=true")
    return src, dst


def test_a_faithful_copy_passes_and_nothing_is_written(
    server: Server, sides: tuple[Path, Path]
) -> None:
    src, dst = sides
    before = snapshot(src), snapshot(dst)
    said = server.cli("transfer", "src:run", "dst:copy", "--mode", "check", "--wait").stdout
    assert "succeeded" in said and "same 4, differ 0, missing 0" in said, said
    assert (snapshot(src), snapshot(dst)) == before
    job = server.cli_json("jobs")[0]
    assert set(states(server, job["job_id"]).values()) == {"same"}


def test_differences_fail_the_job_and_name_each_file(
    server: Server, sides: tuple[Path, Path]
) -> None:
    _, dst = sides
    (dst / "a.txt").write_text("A")  # same size, other bytes
    (dst / "sub" / "b.txt").unlink()  # missing
    write(dst, {"extra.txt": "x", "sub/more/y.txt": "y", "notes.keep": "mine"})
    before = snapshot(dst)
    shown = server.cli(
        "transfer", "src:run", "dst:copy", "--mode", "check", "--exclude", "*.keep", "--wait",
        check=False,
    )  # fmt: skip
    assert shown.returncode == 1, shown.stdout + shown.stderr
    out = " ".join(shown.stdout.split())
    assert "the sides differ (files: 1 differ, 1 missing at the destination, 2 only at" in out
    assert "same 2, differ 1, missing 1, only at the destination 2" in out
    assert "only at the destination: extra.txt" in out
    assert "only at the destination: sub/more/y.txt" in out
    job = server.cli_json("jobs")[0]
    assert job["state"] == "failed" and job["attempts"] == 1, job  # not retried
    assert states(server, job["job_id"]) == {
        "a.txt": "differs",
        "same.txt": "same",
        "sub/b.txt": "missing",
        "sub/deep/c.txt": "same",
    }
    with server.client() as c:
        result = c.job_detail(job["job_id"])["result"]
    assert result["extra_paths"] == ["extra.txt", "sub/more/y.txt"]
    assert snapshot(dst) == before

    # mended (by a sync from the source into a writable endpoint onto the same folder),
    # the retried check looks again only at what differed, and passes
    server.cli("endpoint", "add", "fix", str(dst))
    fixed = server.cli_json("transfer", "src:run", "fix:", "--mode", "mirror", "--exclude",
                            "*.keep", "--wait")  # fmt: skip
    assert fixed["state"] == "succeeded", fixed
    again = server.cli_json("retry", str(job["job_id"]))
    assert server.wait_job(again["job_id"])["state"] == "succeeded"
    assert set(states(server, job["job_id"]).values()) == {"same"}


def test_check_by_size_and_time_reads_nothing(server: Server, sides: tuple[Path, Path]) -> None:
    src, dst = sides
    for rel in SOURCE:  # the copy has the source's times, as a transfer leaves them
        st = os.stat(src / rel)
        os.utime(dst / rel, ns=(st.st_atime_ns, st.st_mtime_ns))
    (dst / "a.txt").write_text("A")  # same size, other bytes, a new time
    doc = server.cli_json(
        "transfer", "src:run", "dst:copy", "--mode", "check", "--compare", "size-mtime",
        "--wait", check=False,
    )  # fmt: skip
    assert doc["state"] == "failed" and "files: 1 differ," in doc["error"], doc
    assert states(server, doc["job_id"])["a.txt"] == "differs"


def test_bad_requests_are_refused(server: Server, sides: tuple[Path, Path]) -> None:
    r = httpx.post(
        f"{server.url}/api/v1/transfers",
        json={"source": "src:run", "destination": "dst:copy", "mode": "check",
              "empty_folders": True},
    )  # fmt: skip
    assert r.status_code == 422 and "mode check writes nothing" in r.text
    r = httpx.post(
        f"{server.url}/api/v1/transfers",
        json={"source": "src:run", "destination": "dst:copy", "mode": "chek"},
    )
    assert r.status_code == 422 and "check" in r.text
    with server.client() as c:
        assert c.jobs()["total"] == 0


@pytest.mark.parametrize("protocol", ["sftp", "s3"])
def test_check_a_copy_on_a_remote(
    request: pytest.FixtureRequest,
    server: Server,
    sides: tuple[Path, Path],
    tmp_path: Path,
    protocol: str,
) -> None:
    add_remote(request, server, protocol, tmp_path)
    copied = server.cli_json("transfer", "src:run", "remote:m", "--wait")
    assert copied["state"] == "succeeded", copied
    passed = server.cli_json("transfer", "src:run", "remote:m", "--mode", "check", "--wait")
    assert passed["state"] == "succeeded", passed
    (sides[0] / "sub" / "deep" / "c.txt").write_text("changed at the source")
    (sides[0] / "new.txt").write_text("new")
    failed: Any = server.cli_json(
        "transfer", "src:run", "remote:m", "--mode", "check", "--wait", check=False
    )
    assert failed["state"] == "failed", failed
    assert states(server, failed["job_id"]) == {
        "a.txt": "same",
        "new.txt": "missing",
        "same.txt": "same",
        "sub/b.txt": "same",
        "sub/deep/c.txt": "differs",
    }
