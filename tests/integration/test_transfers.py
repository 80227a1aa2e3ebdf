"""Transfers through a real server and the real CLI: copy, move, sync of a large tree."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.support.server import Server
from tests.support.trees import hash_tree, make_tree, temporaries

TREE_FILES = 1200

# Runs again with Celery workers and a real broker (make test-celery).
pytestmark = pytest.mark.executors


@pytest.fixture
def endpoints(server: Server, tmp_path: Path) -> tuple[Path, Path]:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    server.cli("endpoint", "add", "src", str(src))
    server.cli("endpoint", "add", "dst", f"file://{dst}")
    return src, dst


def check_recorded_checksums(server: Server, job_id: int, expected: dict[str, str]) -> None:
    with server.client() as c:
        files = c.job_files(job_id)
    assert {f["path"]: f["checksum"] for f in files} == {
        p: f"sha256:{h}" for p, h in expected.items()
    }
    assert {f["state"] for f in files} == {"done"}


def test_copy_move_sync_tree(server: Server, endpoints: tuple[Path, Path]) -> None:
    src, dst = endpoints
    expected = make_tree(src / "tree", TREE_FILES)

    # copy
    doc = server.cli_json("transfer", "src:tree", "dst:copy", "--wait")
    assert doc["state"] == "succeeded", doc
    assert doc["files_done"] == doc["files_total"] == TREE_FILES
    assert (
        doc["bytes_done"]
        == doc["bytes_total"]
        == sum((src / "tree" / p).stat().st_size for p in expected)
    )
    assert hash_tree(dst / "copy") == expected
    check_recorded_checksums(server, doc["job_id"], expected)

    # sync after changing a few files: only those are copied
    changed = sorted(expected)[:5]
    for rel in changed:
        (src / "tree" / rel).write_bytes(b"changed " + rel.encode())
    expected_after = hash_tree(src / "tree")
    doc = server.cli_json("transfer", "src:tree", "dst:copy", "--mode", "sync", "--wait")
    assert doc["state"] == "succeeded", doc
    with server.client() as c:
        states = [f["state"] for f in c.job_files(doc["job_id"])]
    assert states.count("done") == len(changed)
    assert states.count("skipped") == TREE_FILES - len(changed)
    assert hash_tree(dst / "copy") == expected_after

    # move: the destination gets everything, the source loses everything
    doc = server.cli_json("transfer", "src:tree", "dst:moved", "--mode", "move", "--wait")
    assert doc["state"] == "succeeded", doc
    assert hash_tree(dst / "moved") == expected_after
    assert not (src / "tree").exists()
    assert temporaries(dst) == []


def test_single_file_into_folder_and_overwrite_never(
    server: Server, endpoints: tuple[Path, Path]
) -> None:
    src, dst = endpoints
    (src / "one.txt").write_text("first")
    (dst / "inbox").mkdir()
    doc = server.cli_json("transfer", "src:one.txt", "dst:inbox", "--wait")
    assert doc["state"] == "succeeded"
    assert (dst / "inbox" / "one.txt").read_text() == "first"
    (src / "one.txt").write_text("second")
    doc = server.cli_json("transfer", "src:one.txt", "dst:inbox", "--overwrite", "never", "--wait")
    assert doc["state"] == "succeeded"
    assert (dst / "inbox" / "one.txt").read_text() == "first"
    doc = server.cli_json("transfer", "src:one.txt", "dst:inbox/renamed.txt", "--wait")
    assert (dst / "inbox" / "renamed.txt").read_text() == "second"


@pytest.mark.parametrize("algo", ["md5", "sha1", "none"])
def test_other_checksums(server: Server, endpoints: tuple[Path, Path], algo: str) -> None:
    import hashlib

    src, dst = endpoints
    (src / "d").mkdir()
    (src / "d" / "x").write_bytes(b"x" * 10_000)
    doc = server.cli_json("transfer", "src:d", "dst:d", "--checksum", algo, "--wait")
    assert doc["state"] == "succeeded"
    with server.client() as c:
        (f,) = c.job_files(doc["job_id"])
    want = "" if algo == "none" else f"{algo}:{hashlib.new(algo, b'x' * 10_000).hexdigest()}"
    assert f["checksum"] == want
    assert (dst / "d" / "x").read_bytes() == b"x" * 10_000


def test_empty_folder_succeeds(server: Server, endpoints: tuple[Path, Path]) -> None:
    src, _ = endpoints
    (src / "empty").mkdir()
    doc = server.cli_json("transfer", "src:empty", "dst:e", "--wait")
    assert doc["state"] == "succeeded" and doc["files_total"] == 0
    assert doc["task_percent"] == 100.0


def test_status_jobs_and_cli_text_output(server: Server, endpoints: tuple[Path, Path]) -> None:
    src, _ = endpoints
    (src / "f").write_text("f")
    out = server.cli("transfer", "src:f", "dst:f", "--wait").stdout
    assert "succeeded" in out
    jobs = server.cli_json("jobs")
    assert jobs[0]["state"] == "succeeded"
    job_id = jobs[0]["job_id"]
    assert set(jobs[0]) == {
        "job_id",
        "kind",
        "state",
        "task",
        "task_percent",
        "bytes_done",
        "bytes_total",
        "files_done",
        "files_total",
        "attempts",
        "worker",
        "created",
        "updated",
        "error",
    }
    assert jobs[0]["worker"]  # which worker ran it
    assert server.cli_json("status", str(job_id))["job_id"] == job_id
    assert "succeeded" in server.cli("status", str(job_id)).stdout
    assert "succeeded" in server.cli("jobs", "--state", "succeeded").stdout


def test_bandwidth_limit_paces_a_transfer(server_factory: Any, tmp_path: Path) -> None:
    """`transfer.bandwidth_limit` caps a job's rate: 3 MiB at 4 MiB/s cannot finish in
    under 0.75 s (a lower bound only; a busy machine only makes it slower)."""
    from datetime import datetime

    server: Server = server_factory("paced", env={"DATAFERRY_TRANSFER__BANDWIDTH_LIMIT": "4194304"})
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    for i in range(3):
        (src / f"f{i}.bin").write_bytes(os.urandom(1024 * 1024))
    server.cli("endpoint", "add", "src", str(src))
    server.cli("endpoint", "add", "dst", str(dst))
    doc = server.cli_json("transfer", "src:", "dst:", "--wait")
    assert doc["state"] == "succeeded", doc
    took = datetime.fromisoformat(doc["updated"]) - datetime.fromisoformat(doc["created"])
    assert took.total_seconds() >= 0.75 - 0.01, took
    assert hash_tree(dst) == hash_tree(src)
