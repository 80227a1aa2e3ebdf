"""First slice: upload a bundle, follow the job, find the archive and metadata."""

from __future__ import annotations

from tests.support.bundles import make_bundle, upload, wait_state
from tests.support.server import Server


def test_upload_good_bundle(server: Server) -> None:
    files = {"a/b/x.txt": b"hello", "top.bin": b"\0" * 1000}
    r = upload(server.url, make_bundle(files))
    assert r.status_code == 200, r.text
    job_id = r.json()["job_id"]
    doc = wait_state(server.url, job_id)
    assert doc["state"] == "OK", doc
    assert (doc["task"], doc["task_percent"]) == ("ingest metadata", "100.0")
    archive = server.home / "archive" / str(job_id)
    assert (archive / "a" / "b" / "x.txt").read_bytes() == b"hello"
