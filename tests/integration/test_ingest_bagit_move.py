"""BagIt bags in a bundle, and ``POST /move`` from a staging endpoint."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from pathlib import Path
from typing import Any

import bagit
import httpx
import pytest

from tests.support.bundles import file_entry, upload, wait_state
from tests.support.ingest_server import counts
from tests.support.server import Server


def tar_folder(folder: Path, top: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(folder, arcname=top)
    return buf.getvalue()


@pytest.fixture
def bag_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "mybag"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "a.txt").write_text("alpha")
    (folder / "b.bin").write_bytes(os.urandom(50_000))
    bagit.make_bag(
        str(folder),
        bag_info={"Source-Organization": "Lab", "Transactions.project": "bagproj"},
        checksums=["sha256"],
    )
    return folder


def test_bagit_bag_is_validated_and_ingested(server: Server, bag_dir: Path) -> None:
    doc = wait_state(server.url, upload(server.url, tar_folder(bag_dir, "mybag")).json()["job_id"])
    assert (doc["state"], doc["task"]) == ("OK", "ingest metadata"), doc
    tx = httpx.get(f"{server.url}/api/v1/transactions/{doc['job_id']}", timeout=10).json()
    assert tx["origin"] == "bagit" and tx["project"] == "bagproj"
    keys = {kv["key"]: kv["value"] for kv in tx["key_values"]}
    assert keys["Source-Organization"] == "Lab"
    assert "Payload-Oxum" in keys and "Bagging-Date" in keys
    assert {f["path"] for f in tx["files"]} == {"sub/a.txt", "b.bin"}
    assert {f["hashtype"] for f in tx["files"]} == {"sha256"}
    archived = server.home / "archive" / str(doc["job_id"])
    assert (archived / "sub" / "a.txt").read_text() == "alpha"


def test_tampered_bag_fails_at_load_metadata(server: Server, bag_dir: Path) -> None:
    (bag_dir / "data" / "sub" / "a.txt").write_text("ALPHA")  # same size, other bytes
    before = counts(server)
    doc = wait_state(server.url, upload(server.url, tar_folder(bag_dir, "mybag")).json()["job_id"])
    assert (doc["state"], doc["task"]) == ("FAILED", "load metadata"), doc
    assert "BagIt bag is not valid" in doc["exception"]
    assert counts(server) == before


def test_bag_with_wrong_oxum(server: Server, bag_dir: Path) -> None:
    info = (bag_dir / "bag-info.txt").read_text()
    lines = [ln for ln in info.splitlines() if not ln.startswith("Payload-Oxum")]
    (bag_dir / "bag-info.txt").write_text("\n".join([*lines, "Payload-Oxum: 1.1"]) + "\n")
    doc = wait_state(server.url, upload(server.url, tar_folder(bag_dir, "")).json()["job_id"])
    assert (doc["state"], doc["task"]) == ("FAILED", "load metadata"), doc
    assert "Payload-Oxum" in doc["exception"] or "oxum" in doc["exception"].lower()


def retag(folder: Path, lines: bytes) -> None:
    """Add ``lines`` to the bag's bag-info.txt as they are (bytes bagit would not
    write), and make its tag manifest agree."""
    info = folder / "bag-info.txt"
    info.write_bytes(info.read_bytes() + lines)
    tagmanifest = folder / "tagmanifest-sha256.txt"
    rows = []
    for row in tagmanifest.read_text().splitlines():
        _, name = row.split(maxsplit=1)
        rows.append(f"{hashlib.sha256((folder / name).read_bytes()).hexdigest()}  {name}")
    tagmanifest.write_text("\n".join(rows) + "\n")


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (b"K" * 256 + b": v\n", f"bag-info.txt: key {'K' * 60!r}... is longer than 255 characters"),
        (b"Bad\x01Key: v\n", "bag-info.txt: key 'Bad\\x01Key' holds a control character"),
        (b"Note: a\x00b\n", "bag-info.txt: tag 'Note': value 'a\\x00b' holds a NUL character"),
        (
            b"Transactions.project: " + b"p" * 256 + b"\n",
            "bag-info.txt: tag 'Transactions.project': value "
            f"{'p' * 60!r}... is longer than 255 characters",
        ),
        (b"Note: caf\xe9\n", "is not utf-8 text: invalid continuation byte"),
        (b"Note: \\ud800\n", "bag-info.txt: '\\ud800' holds a lone surrogate"),
    ],
    ids=["long-key", "control-key", "nul-value", "long-project", "not-utf8", "surrogate"],
)
def test_bag_info_the_tables_cannot_hold_fails_at_load_metadata(
    server: Server, bag_dir: Path, lines: bytes, message: str
) -> None:
    """Before, bag-info.txt was not held to the tables' limits as metadata.txt is: a
    key over 255 characters was archived and then refused by PostgreSQL at the last
    task (SQLite stored it), a NUL likewise, and a bag-info.txt that is not UTF-8
    was an internal error."""
    if b"\\ud800" in lines:  # a tag file encoding that can spell a lone surrogate
        bagit_txt = bag_dir / "bagit.txt"
        bagit_txt.write_text(bagit_txt.read_text().replace("UTF-8", "unicode_escape"))
    retag(bag_dir, lines)
    before = counts(server)
    doc = wait_state(server.url, upload(server.url, tar_folder(bag_dir, "mybag")).json()["job_id"])
    assert (doc["state"], doc["task"]) == ("FAILED", "load metadata"), doc
    assert message in doc["exception"], doc
    assert counts(server) == before


# -- /move -------------------------------------------------------------------------
@pytest.fixture
def staged(server_factory: Any, tmp_path: Path) -> tuple[Server, Path]:
    staging = tmp_path / "staging"
    (staging / "run1").mkdir(parents=True)
    server: Server = server_factory("m", env={"DATAFERRY_INGEST__STAGING_ENDPOINT": "staging"})
    server.cli("endpoint", "add", "staging", str(staging))
    return server, staging


def move_meta(files: dict[str, bytes], sources: dict[str, str]) -> list[dict[str, Any]]:
    meta: list[dict[str, Any]] = [{"destinationTable": "Transactions.project", "value": "mv"}]
    for path, data in files.items():
        meta.append({**file_entry(path, data), "source": sources[path]})
    return meta


def test_move_ingests_staged_files(staged: tuple[Server, Path]) -> None:
    server, staging = staged
    files = {"x/one.txt": b"one", "two.bin": os.urandom(20_000)}
    (staging / "run1" / "one.txt").write_bytes(files["x/one.txt"])
    (staging / "run1" / "two.bin").write_bytes(files["two.bin"])
    meta = move_meta(files, {"x/one.txt": "run1/one.txt", "two.bin": "run1/two.bin"})
    r = httpx.post(f"{server.url}/move", content=json.dumps(meta), timeout=30)
    assert r.status_code == 200, r.text
    doc = wait_state(server.url, r.json()["job_id"])
    assert (doc["state"], doc["task"]) == ("OK", "ingest metadata"), doc
    tx = httpx.get(f"{server.url}/api/v1/transactions/{doc['job_id']}", timeout=10).json()
    assert tx["origin"] == "move" and tx["project"] == "mv"
    archived = server.home / "archive" / str(doc["job_id"])
    assert (archived / "x" / "one.txt").read_bytes() == b"one"
    assert (archived / "two.bin").read_bytes() == files["two.bin"]


def test_move_refusals(staged: tuple[Server, Path]) -> None:
    server, staging = staged
    (staging / "run1" / "f.txt").write_bytes(b"abc")

    def moved(meta: Any) -> dict[str, Any]:
        body = meta if isinstance(meta, bytes) else json.dumps(meta).encode()
        r = httpx.post(f"{server.url}/move", content=body, timeout=30)
        return wait_state(server.url, r.json()["job_id"])

    before = counts(server)
    wrong_hash = move_meta({"f.txt": b"xyz"}, {"f.txt": "run1/f.txt"})
    doc = moved(wrong_hash)
    assert (doc["state"], doc["task"]) == ("FAILED", "move files"), doc
    assert "sha1 is" in doc["exception"]
    doc = moved(move_meta({"f.txt": b"abcd"}, {"f.txt": "run1/f.txt"}))
    assert (doc["task"], doc["state"]) == ("move files", "FAILED")
    assert "is 3 bytes" in doc["exception"]
    doc = moved(move_meta({"f.txt": b"abc"}, {"f.txt": "../../etc/passwd"}))
    assert (doc["task"], doc["state"]) == ("load metadata", "FAILED")
    assert "escapes" in doc["exception"]
    doc = moved(move_meta({"f.txt": b"abc"}, {"f.txt": "run1/missing"}))
    assert (doc["task"], doc["state"]) == ("move files", "FAILED")
    doc = moved(b"{not json")
    assert (doc["task"], doc["state"]) == ("load metadata", "FAILED")
    assert "not valid JSON" in doc["exception"]
    # NaN was stored with the job (on PostgreSQL: refused by the database at the
    # door); a body nesting past the parser's recursion was a 500.
    for body, message in (
        (b'[{"destinationTable": "Transactions.project", "value": NaN}]', "NaN is not a"),
        (b"[" * 5000 + b"]" * 5000, "nests too deeply"),
        (b'[{"destinationTable": "Transactions.project", "value": "\\ud800"}]', "surrogate"),
    ):
        doc = moved(body)
        assert (doc["task"], doc["state"]) == ("load metadata", "FAILED"), doc
        assert message in doc["exception"], doc
    no_source = [{"destinationTable": "Transactions.project", "value": "mv"}, file_entry("f", b"")]
    doc = moved(no_source)
    assert "'source'" in doc["exception"]
    assert counts(server) == before
    assert (staging / "run1" / "f.txt").read_bytes() == b"abc"


def test_move_without_staging_is_refused(server: Server) -> None:
    r = httpx.post(f"{server.url}/move", content=b"[]", timeout=10)
    assert r.status_code == 422
    assert "staging" in r.json()["detail"]
