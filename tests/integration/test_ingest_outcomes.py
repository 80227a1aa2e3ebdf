"""The outcome table and every hostile bundle: the job ends at the right task with a
clear exception, and a refused bundle changes nothing (archive, metadata, spool)."""

from __future__ import annotations

import gzip
import io
import json
import os
import socket
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.bundles import (
    BASE_META,
    file_entry,
    make_bundle,
    metadata_for,
    upload,
    wait_state,
)
from tests.support.databases import PostgresDatabases
from tests.support.ingest_server import (
    INGEST_ENV,
    MiB,
    PolicyHandler,
    counts,
    policy_service,
    spool_entries,
    start_server,
)
from tests.support.server import Server


@pytest.fixture(scope="module")
def srv(
    tmp_path_factory: pytest.TempPathFactory, postgres: PostgresDatabases | None
) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("ingest")
    for url in policy_service():
        server = start_server(folder, postgres, {**INGEST_ENV, "DATAFERRY_INGEST__POLICY_URL": url})
        try:
            yield server
        finally:
            server.kill()


def ingest(server: Server, body: Any, **kw: Any) -> dict[str, Any]:
    r = upload(server.url, body, **kw)
    assert r.status_code in (200, 400, 413), r.text
    return wait_state(server.url, r.json()["job_id"])


def refused(server: Server, body: Any, task: str, message: str) -> dict[str, Any]:
    """Upload ``body``; it must fail at ``task`` with ``message`` and change nothing."""
    before = counts(server)
    doc = ingest(server, body)
    assert doc["state"] == "FAILED", doc
    assert doc["task"] == task, doc
    assert doc["complete"] is True
    assert message in doc["exception"], doc
    assert counts(server) == before, "a refused bundle changed the archive or the metadata"
    assert str(doc["job_id"]) not in spool_entries(server), "the spool was not cleaned up"
    return doc


# -- the outcome table -------------------------------------------------------------
def test_good_bundle_is_archived_and_recorded(srv: Server) -> None:
    files = {"a/b/x.txt": b"hello", "top.bin": os.urandom(100_000), "empty": b""}
    r = upload(srv.url, make_bundle(files, hashtype="sha256"))
    assert r.status_code == 200, r.text
    first = r.json()
    assert set(first) == {
        "job_id",
        "state",
        "task",
        "task_percent",
        "complete",
        "updated",
        "created",
        "exception",
    }
    assert first["state"] == "OK" and first["task"] == "UPLOADING"
    job_id = first["job_id"]
    doc = wait_state(srv.url, job_id)
    assert (doc["state"], doc["task"], doc["task_percent"]) == ("OK", "ingest metadata", "100.0")
    assert doc["complete"] is True and doc["exception"] == ""
    assert isinstance(doc["task_percent"], str)

    job = httpx.get(f"{srv.url}/api/v1/jobs/{job_id}", timeout=10).json()
    assert job["kind"] == "ingest" and job["state"] == "succeeded"
    assert job["files_done"] == job["files_total"] == 3

    tx = httpx.get(f"{srv.url}/api/v1/transactions/{job_id}", timeout=10).json()
    assert (tx["submitter"], tx["project"], tx["instrument"]) == ("10", "p1", "54")
    assert tx["key_values"] == [{"key": "Tag", "value": "run-7"}]
    by_path = {f["path"]: f for f in tx["files"]}
    assert set(by_path) == set(files)
    for path, data in files.items():
        f = by_path[path]
        assert f["size"] == len(data) and f["hashtype"] == "sha256"
        assert (srv.home / "archive" / f["archive_path"]).read_bytes() == data
        got = httpx.get(f"{srv.url}{f['download']}", timeout=10)
        assert got.status_code == 200 and got.content == data
    assert str(job_id) not in spool_entries(srv)


def test_metadata_may_come_first(srv: Server) -> None:
    doc = ingest(srv, make_bundle({"f.txt": b"first"}, metadata_first=True))
    assert (doc["state"], doc["task"]) == ("OK", "ingest metadata"), doc


def test_ingest_door_is_the_same_as_upload(srv: Server) -> None:
    doc = ingest(srv, make_bundle({"g.txt": b"via /ingest"}), path="/ingest")
    assert doc["state"] == "OK", doc


def test_gzip_bundle_is_accepted(srv: Server) -> None:
    doc = ingest(srv, make_bundle({"z.bin": os.urandom(300_000)}, compression="gz"))
    assert doc["state"] == "OK", doc


def test_chunked_body_without_length(srv: Server) -> None:
    body = make_bundle({"c.bin": os.urandom(3 * MiB)})

    def pieces() -> Iterator[bytes]:
        for i in range(0, len(body), 65536):
            yield body[i : i + 65536]

    doc = ingest(srv, pieces())
    assert doc["state"] == "OK", doc


def test_wrong_hash_fails_at_ingest_files(srv: Server) -> None:
    files = {"ok1.bin": os.urandom(5000), "ok2.bin": os.urandom(5000), "bad.bin": b"tampered"}
    meta = metadata_for(files)
    meta[-1] = {**file_entry("bad.bin", b"original"), "size": len(b"tampered")}
    refused(srv, make_bundle(files, metadata=meta), "ingest files", "data/bad.bin: sha1 is")


def test_invalid_json_fails_at_load_metadata(srv: Server) -> None:
    body = make_bundle({"f": b"x"}, metadata_text=b"[{not json")
    refused(srv, body, "load metadata", "not valid JSON")


def test_random_bytes_fail_at_open_tar(srv: Server) -> None:
    refused(srv, os.urandom(100_000), "open tar", "not a tar archive")


def test_refused_project_fails_at_policy_validation(srv: Server) -> None:
    meta = [
        {"destinationTable": "Transactions.project", "value": "evil"},
        file_entry("f", b"x"),
    ]
    refused(srv, make_bundle({"f": b"x"}, metadata=meta), "Policy Validation", "project 'evil'")


def test_external_policy_refusal(srv: Server) -> None:
    meta = [
        *BASE_META,
        {"destinationTable": "TransactionKeyValue", "key": "k", "value": "forbidden"},
    ]
    meta.append(file_entry("f", b"x"))
    refused(
        srv,
        make_bundle({"f": b"x"}, metadata=meta),
        "Policy Validation",
        "tag 'forbidden' is not accepted here",
    )
    assert PolicyHandler.seen, "the policy service was never asked"


def test_unknown_job_is_404(srv: Server) -> None:
    r = httpx.get(f"{srv.url}/get_state", params={"job_id": 987654}, timeout=10)
    assert r.status_code == 404
    assert "987654" in r.json()["detail"]


def test_missing_metadata_fails_at_load_metadata(srv: Server) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("data/f")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    refused(srv, buf.getvalue(), "load metadata", "metadata.txt is missing")


def test_wrong_metadata_shape(srv: Server) -> None:
    body = make_bundle({"f": b"x"}, metadata={"not": "a list"})
    refused(srv, body, "load metadata", "must be a JSON list")


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"destinationTable": "TransactionKeyValue", "key": "k" * 256, "value": "v"}, "longer"),
        ({"destinationTable": "TransactionKeyValue", "key": "k", "value": "a\x00"}, "NUL"),
        ({"destinationTable": "Transactions.instrument", "value": 10**300}, "longer"),
        ({"destinationTable": "TransactionKeyValue", "key": "k", "value": "\ud800"}, "surrogate"),
    ],
    ids=["long-key", "nul", "long-instrument", "surrogate"],
)
def test_values_the_tables_cannot_hold_fail_at_load_metadata(
    srv: Server, entry: dict[str, Any], message: str
) -> None:
    """Before, these failed at the last task, after the files were archived: on
    PostgreSQL only (SQLite stored them), or for a surrogate with an internal error."""
    table = entry["destinationTable"]
    meta = [e for e in metadata_for({"f": b"x"}) if e["destinationTable"] != table] + [entry]
    text = json.dumps(meta).encode()  # ASCII: a surrogate stays an escape
    refused(srv, make_bundle({"f": b"x"}, metadata_text=text), "load metadata", message)


def test_unlisted_and_missing_files(srv: Server) -> None:
    files = {"f": b"x", "extra": b"y"}
    meta = metadata_for({"f": b"x"})
    refused(srv, make_bundle(files, metadata=meta), "ingest files", "data/extra is in the bundle")
    meta = metadata_for({"f": b"x", "ghost": b"z"})
    refused(srv, make_bundle({"f": b"x"}, metadata=meta), "ingest files", "data/ghost is listed")


# -- hostile bundles ---------------------------------------------------------------
def special(name: str, kind: bytes, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info


@pytest.mark.parametrize(
    ("member", "message"),
    [
        (special("data/../../evil.txt", tarfile.REGTYPE), "escapes"),
        (special("/etc/evil.txt", tarfile.REGTYPE), "absolute path"),
        (special("data/link", tarfile.SYMTYPE, "/etc/passwd"), "is a symbolic link"),
        (special("data/hard", tarfile.LNKTYPE, "data/f"), "is a hard link"),
        (special("data/dev", tarfile.CHRTYPE), "is a device file"),
        (special("data/fifo", tarfile.FIFOTYPE), "is a FIFO"),
        (special("data/f", tarfile.REGTYPE), "appears twice"),
        (special("elsewhere.txt", tarfile.REGTYPE), "neither metadata.txt nor under data/"),
        (special(os.fsdecode(b"data/caf\xe9"), tarfile.REGTYPE), "is not valid UTF-8"),
    ],
    ids=[
        "dotdot",
        "absolute",
        "symlink",
        "hardlink",
        "device",
        "fifo",
        "duplicate",
        "outside",
        "not-utf8",
    ],
)
def test_hostile_member(srv: Server, member: tarfile.TarInfo, message: str) -> None:
    body = make_bundle({"f": b"x"}, extra=[member])
    refused(srv, body, "open tar", message)
    assert not (srv.home.parent / "evil.txt").exists()


def test_member_larger_than_declared(srv: Server) -> None:
    data = os.urandom(2000)
    meta = metadata_for({"big": data[:1000]})
    body = make_bundle({"big": data}, metadata=meta)
    refused(srv, body, "ingest files", "larger than the 1000 bytes metadata.txt declares")


def test_truncated_tar(srv: Server) -> None:
    body = make_bundle({"a": os.urandom(100_000), "b": os.urandom(100_000)})
    refused(srv, body[:150_000], "open tar", "truncated")


def test_truncated_gzip(srv: Server) -> None:
    body = make_bundle({"a": os.urandom(200_000)}, compression="gz")
    refused(srv, body[: len(body) // 2], "open tar", "damaged or cut short")


def test_gzip_bomb(srv: Server) -> None:
    inner = make_bundle({"zeros": b"\0" * (40 * MiB)})
    bomb = gzip.compress(inner, compresslevel=9)
    assert len(inner) / len(bomb) > 50
    refused(srv, bomb, "open tar", "decompression bomb")


def test_upload_over_the_size_limit(srv: Server) -> None:
    before = counts(srv)
    body = os.urandom(9 * MiB)  # the limit is 8 MiB

    def pieces() -> Iterator[bytes]:  # chunked: the server finds out while reading
        for i in range(0, len(body), MiB):
            yield body[i : i + MiB]

    r = upload(srv.url, pieces())
    assert r.status_code == 413, r.text
    doc = r.json()
    assert (doc["state"], doc["task"]) == ("FAILED", "UPLOADING")
    assert "larger than the configured limit" in doc["exception"]
    assert wait_state(srv.url, doc["job_id"])["state"] == "FAILED"
    assert counts(srv) == before
    assert str(doc["job_id"]) not in spool_entries(srv)


def test_declared_size_over_the_limit(srv: Server) -> None:
    r = upload(srv.url, os.urandom(9 * MiB))
    assert r.status_code == 413, r.text
    assert "larger than the configured limit" in r.json()["exception"]


def test_body_that_stops_mid_stream(srv: Server) -> None:
    before = counts(srv)
    host, port = "127.0.0.1", srv.port
    with socket.create_connection((host, port)) as s:
        s.sendall(
            b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
            b"Content-Length: 5000000\r\n\r\n" + os.urandom(1_000_000)
        )
        time.sleep(0.5)
    deadline = time.monotonic() + 60
    while True:
        jobs = httpx.get(
            f"{srv.url}/api/v1/jobs", params={"kind": "ingest", "limit": 1}, timeout=10
        ).json()["jobs"]
        doc = wait_state(srv.url, jobs[0]["job_id"]) if jobs else {}
        if doc.get("task") == "UPLOADING":
            break
        assert time.monotonic() < deadline, doc
        time.sleep(0.2)
    assert doc["state"] == "FAILED"
    assert "the upload stopped after" in doc["exception"] and "5000000" in doc["exception"]
    assert counts(srv) == before
    assert str(doc["job_id"]) not in spool_entries(srv)


def test_pacifica_metadata_with_extra_fields(srv: Server) -> None:
    """The Pacifica uploader sends MetaObj fields this service does not use."""
    data = b"pacifica"
    meta: list[dict[str, Any]] = [
        {
            "destinationTable": "Transactions.project",
            "value": "p2",
            "metaID": "ProjectID",
            "displayType": "select",
            "displayTitle": "Project",
            "queryFields": ["_id"],
        },
        {"destinationTable": "Transactions.submitter", "value": 10, "metaID": "logon"},
        {**file_entry("x.txt", data), "subdir": "data/sub"},
    ]
    r = upload(srv.url, make_bundle({"sub/x.txt": data}, metadata=meta))
    doc = wait_state(srv.url, r.json()["job_id"])
    assert doc["state"] == "OK", doc
    tx = httpx.get(f"{srv.url}/api/v1/transactions/{doc['job_id']}", timeout=10).json()
    assert tx["project"] == "p2" and tx["submitter"] == "10"
    assert [f["path"] for f in tx["files"]] == ["sub/x.txt"]


def test_bad_request_json_is_clear(srv: Server, tmp_path: Path) -> None:
    r = httpx.get(f"{srv.url}/get_state", params={"job_id": "abc"}, timeout=10)
    assert r.status_code == 422
    assert "job_id" in json.dumps(r.json())
