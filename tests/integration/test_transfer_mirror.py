"""``mirror`` mode: sync, then remove what the source does not have (local, SFTP, S3)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.test_remote_protocols import add_remote
from tests.support.server import Server
from tests.support.trees import hash_tree


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)


SOURCE = {"a.txt": "a", "same.txt": "same", "sub/b.txt": "b", "sub/deep/c.txt": "c"}


@pytest.fixture
def folders(server: Server, tmp_path: Path) -> tuple[Path, Path]:
    src, dst = tmp_path / "src", tmp_path / "dst"
    write(src / "run", SOURCE)
    dst.mkdir()
    server.cli("endpoint", "add", "src", str(src))
    server.cli("endpoint", "add", "dst", str(dst))
    return src, dst


def test_mirror_removes_what_the_source_does_not_have(
    server: Server, folders: tuple[Path, Path]
) -> None:
    src, dst = folders
    write(
        dst / "out",
        {
            "a.txt": "old a",  # differs: replaced
            "same.txt": "same",  # identical: left as it is
            "gone.txt": "x",  # not in the source: removed
            "sub/gone.txt": "x",
            "only-extra/x/y.txt": "x",  # a folder with nothing of the source: removed
            "notes.keep": "mine",  # excluded by the transfer's patterns: stays
            "sub/.b.txt.7.dftmp": "another job's temporary",  # stays
        },
    )
    doc = server.cli_json(
        "transfer", "src:run", "dst:out", "--mode", "mirror", "--exclude", "*.keep", "--wait"
    )
    assert doc["state"] == "succeeded", doc
    assert files_under(dst / "out") == sorted([*SOURCE, "notes.keep", "sub/.b.txt.7.dftmp"])
    assert (dst / "out" / "a.txt").read_text() == "a"
    assert not (dst / "out" / "only-extra").exists()
    with server.client() as c:
        states = {f["path"]: f["state"] for f in c.job_files(doc["job_id"])}
    assert states["same.txt"] == "skipped" and states["a.txt"] == "done"
    job = httpx.get(f"{server.url}/jobs/{doc['job_id']}", headers={"Accept": "text/html"})
    assert "deleted" in job.text  # the result counts the removed files

    # a second mirror with the same patterns has nothing to do
    again = server.cli_json(
        "transfer", "src:run", "dst:out", "--mode", "mirror", "--exclude", "*.keep", "--wait"
    )
    assert again["state"] == "succeeded", again
    assert files_under(dst / "out") == sorted([*SOURCE, "notes.keep", "sub/.b.txt.7.dftmp"])
    assert hash_tree(src / "run") == {
        k: v for k, v in hash_tree(dst / "out").items() if k in SOURCE
    }


def test_mirror_deletes_nothing_when_a_file_fails(
    server: Server, folders: tuple[Path, Path]
) -> None:
    _, dst = folders
    # a folder where the source has the file sub/b.txt: that copy fails for good
    write(dst / "out", {"sub/b.txt/inside.txt": "x", "gone.txt": "x"})
    doc = server.cli_json(
        "transfer", "src:run", "dst:out", "--mode", "mirror", "--wait", check=False
    )
    assert doc["state"] == "failed", doc
    assert (dst / "out" / "gone.txt").exists()
    assert (dst / "out" / "sub/b.txt/inside.txt").exists()


def test_mirror_stops_before_deleting_when_the_destination_cannot_be_listed(
    server: Server, folders: tuple[Path, Path]
) -> None:
    _, dst = folders
    write(dst / "out", {"gone.txt": "x"})
    os.mkfifo(dst / "out" / "a-pipe")
    doc = server.cli_json(
        "transfer", "src:run", "dst:out", "--mode", "mirror", "--wait", check=False
    )
    assert doc["state"] == "failed" and "a-pipe" in doc["error"], doc
    assert (dst / "out" / "gone.txt").exists()


def test_mirror_needs_a_folder_source(server: Server, folders: tuple[Path, Path]) -> None:
    body = {"source": "src:run/a.txt", "destination": "dst:x.txt", "mode": "mirror"}
    r = httpx.post(f"{server.url}/api/v1/transfers", json=body)
    assert r.status_code == 422 and "mirror applies to a folder source" in r.text
    with server.client() as c:
        assert c.jobs()["total"] == 0


@pytest.mark.parametrize("protocol", ["sftp", "s3"])
def test_mirror_to_a_remote(
    request: pytest.FixtureRequest,
    server: Server,
    folders: tuple[Path, Path],
    tmp_path: Path,
    protocol: str,
) -> None:
    src, _ = folders
    add_remote(request, server, protocol, tmp_path)
    (tmp_path / "back").mkdir()
    server.cli("endpoint", "add", "back", str(tmp_path / "back"))
    first = server.cli_json("transfer", "src:run", "remote:m", "--wait")
    assert first["state"] == "succeeded", first
    (src / "run" / "sub" / "b.txt").unlink()
    (src / "run" / "sub" / "deep" / "c.txt").unlink()
    doc = server.cli_json("transfer", "src:run", "remote:m", "--mode", "mirror", "--wait")
    assert doc["state"] == "succeeded", doc
    back = server.cli_json("transfer", "remote:m", "back:m", "--wait")
    assert back["state"] == "succeeded", back
    assert files_under(tmp_path / "back" / "m") == ["a.txt", "same.txt"]
    # patterns on a remote source: the listing leaves out what they do not take
    some = server.cli_json("transfer", "remote:m", "back:some", "--exclude", "same.txt", "--wait")
    assert some["state"] == "succeeded" and some["files_total"] == 1, some
    assert files_under(tmp_path / "back" / "some") == ["a.txt"]


def test_dry_run_lists_what_would_be_copied_and_deleted_and_changes_nothing(
    server: Server, folders: tuple[Path, Path]
) -> None:
    src, dst = folders
    write(dst / "out", {"gone.txt": "x", "old/x.txt": "x", "a.keep": "k"})
    before = hash_tree(dst / "out")
    shown = server.cli(
        "transfer", "src:run", "dst:out", "--mode", "mirror", "--exclude", "*.keep", "--dry-run"
    ).stdout
    assert "copy    sub/deep/c.txt" in shown
    assert "delete  gone.txt" in shown and "delete  old/x.txt" in shown
    assert "a.keep" not in shown
    assert (
        "4 files (" in shown and "2 files to delete" in shown and "nothing was submitted" in shown
    )
    assert hash_tree(dst / "out") == before
    with server.client() as c:
        assert c.jobs()["total"] == 0

    # JSON, and the totals stay whole where the lists are cut
    for i in range(1005):
        (src / "run" / "many").mkdir(exist_ok=True)
        (src / "run" / "many" / f"{i:04}.txt").write_text("x")
    body = {"source": "src:run", "destination": "dst:out", "mode": "mirror"}
    doc = httpx.post(f"{server.url}/api/v1/transfers/preview", json=body).json()
    assert doc["files_total"] == 1009 and len(doc["files"]) == 1000 and doc["truncated"]
    assert doc["delete"] == ["a.keep", "gone.txt", "old/x.txt"] and doc["delete_total"] == 3
    assert doc["bytes_total"] == sum(p.stat().st_size for p in (src / "run").rglob("*.txt"))
    single = httpx.post(
        f"{server.url}/api/v1/transfers/preview",
        json={"source": "src:run/a.txt", "destination": "dst:one.txt"},
    ).json()
    assert single["files"] == [{"path": "", "size": 1}] and single["destination"] == "dst:one.txt"

    # the same refusals as a submit
    bad = httpx.post(f"{server.url}/api/v1/transfers/preview", json={**body, "exclude": ["#"]})
    assert bad.status_code == 422 and "matches nothing" in bad.text
    missing = httpx.post(
        f"{server.url}/api/v1/transfers/preview", json={**body, "source": "nope:run"}
    )
    assert missing.status_code == 404

    rpc = {
        "jsonrpc": "2.0",
        "method": "transfers.preview",
        "params": {"source": "src:run", "destination": "dst:out", "include": ["a.txt"]},
        "id": 1,
    }
    result = httpx.post(f"{server.url}/jsonrpc", json=rpc).json()["result"]
    assert result["files"] == [{"path": "a.txt", "size": 1}] and result["delete_total"] == 0
    assert hash_tree(dst / "out") == before
    with server.client() as c:
        assert c.jobs()["total"] == 0


def test_mirror_and_dry_run_into_another_instance(
    server_factory: Any, tmp_path: Path, consumer_db: str
) -> None:
    """The destination is a peer's endpoint (``dataferry://``): listed and pruned
    through the peer file protocol."""
    from tests.support.pair import make_pair

    pair = make_pair(server_factory, tmp_path, consumer_db)
    write(pair.data / "set", SOURCE)
    write(pair.inbox / "pushed", {"gone.txt": "x", "old/x.txt": "x", "same.txt": "same"})
    pair.provider.cli("endpoint", "add", "home-inbox", "dataferry://home/inbox/pushed")
    # a mirror lists the destination: a peer that may only write there says no
    refused = pair.provider.cli(
        "transfer", "data:set", "home-inbox:", "--mode", "mirror", "--dry-run", check=False
    )
    assert refused.returncode == 1 and "may not read endpoint 'inbox'" in refused.stderr
    pair.consumer.cli("endpoint", "remove", "inbox")
    pair.consumer.cli(
        "endpoint", "add", "inbox", str(pair.inbox), "-o", "peer_read=fac", "-o", "peer_write=fac"
    )
    deadline = time.monotonic() + 30  # a peer's view of endpoint options is cached 2 s
    while (
        r := pair.provider.cli(
            "transfer",
            "data:set",
            "home-inbox:",
            "--mode",
            "mirror",
            "--dry-run",
            "--json",
            check=False,
        )
    ).returncode:
        assert "may not read" in r.stderr and time.monotonic() < deadline, r.stderr
        time.sleep(0.3)
    shown = json.loads(r.stdout)
    assert shown["delete"] == ["gone.txt", "old/x.txt"] and shown["files_total"] == 4
    assert files_under(pair.inbox / "pushed") == ["gone.txt", "old/x.txt", "same.txt"]
    job = pair.provider.cli_json("transfer", "data:set", "home-inbox:", "--mode", "mirror")
    doc = pair.provider.wait_job(job["job_id"])
    assert doc["state"] == "succeeded", doc
    assert files_under(pair.inbox / "pushed") == sorted(SOURCE)
    assert not (pair.inbox / "pushed" / "old").exists()
