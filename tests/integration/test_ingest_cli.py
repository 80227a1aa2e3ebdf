"""The client side: ``bundle create``, ``ingest`` (file or folder), ``transactions show``."""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path

from tests.support.server import Server
from tests.support.trees import make_tree


def test_bundle_create_then_ingest_and_show(server: Server, tmp_path: Path) -> None:
    src = tmp_path / "src"
    expected = make_tree(src, 25)
    out = tmp_path / "b.tar"
    server.cli(
        "bundle",
        "create",
        str(src),
        "-o",
        str(out),
        "--meta",
        "Transactions.project=p9",
        "--meta",
        "Tag=cli",
        "--hash",
        "sha256",
    )
    with tarfile.open(out) as tar:
        names = tar.getnames()
        meta = json.loads(tar.extractfile("metadata.txt").read())  # type: ignore[union-attr]
    assert names[-1] == "metadata.txt"
    files = {
        f"{e['subdir']}/{e['name']}".lstrip("/"): e
        for e in meta
        if e["destinationTable"] == "Files"
    }
    assert set(files) == set(expected)
    assert all(
        files[p]["hashsum"] == h and files[p]["hashtype"] == "sha256" for p, h in expected.items()
    )

    doc = server.cli_json("ingest", str(out), "--wait")
    assert doc["state"] == "succeeded", doc
    assert doc["task"] == "ingest metadata"
    tx = server.cli_json("transactions", "show", str(doc["job_id"]))
    assert tx["project"] == "p9"
    assert tx["key_values"] == [{"key": "Tag", "value": "cli"}]
    archive = server.home / "archive"
    for f in tx["files"]:
        data = (archive / f["archive_path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == expected[f["path"]]
    listed = server.cli_json("transactions", "list")
    assert [t["transaction_id"] for t in listed] == [doc["job_id"]]
    human = server.cli("transactions", "show", str(doc["job_id"])).stdout
    assert "p9" in human and "Tag = cli" in human


def test_ingest_a_folder_on_the_fly(server: Server, tmp_path: Path) -> None:
    src = tmp_path / "src"
    expected = make_tree(src, 10, seed=3)
    doc = server.cli_json("ingest", str(src), "--meta", "Transactions.instrument=i1", "--wait")
    assert doc["state"] == "succeeded", doc
    tx = server.cli_json("transactions", "show", str(doc["job_id"]))
    assert tx["instrument"] == "i1"
    assert {f["path"] for f in tx["files"]} == set(expected)


def test_ingest_failure_exits_non_zero(server: Server, tmp_path: Path) -> None:
    bad = tmp_path / "bad.tar"
    bad.write_bytes(b"not a tar at all" * 100)
    result = server.cli("ingest", str(bad), "--wait", "--json", check=False)
    assert result.returncode == 1
    doc = json.loads(result.stdout)
    assert doc["state"] == "failed" and doc["task"] == "open tar"
    assert "not a tar archive" in doc["error"]
    missing = server.cli("ingest", str(tmp_path / "nope"), check=False)
    assert missing.returncode == 1 and "does not exist" in " ".join(missing.stderr.split())
