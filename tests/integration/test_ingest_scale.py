"""Large bundles: server memory stays flat with a 2 GiB upload; kill -9 during
``ingest files`` leaves no partial file and the job finishes from its spool."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest

from tests.support.bundles import make_bundle, peak_rss_mib, synthetic_bundle, upload, wait_state
from tests.support.server import Server
from tests.support.trees import temporaries

MiB = 1024 * 1024
GiB = 1024 * MiB


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_2gib_upload_keeps_server_memory_flat(server: Server) -> None:
    assert server.proc is not None
    pid = server.proc.pid
    # Warm up: one small ingest loads every code path before the baseline is taken.
    r = upload(server.url, make_bundle({"warm": b"up" * 1000}))
    assert wait_state(server.url, r.json()["job_id"])["state"] == "OK"
    baseline = peak_rss_mib(pid)

    body, total = synthetic_bundle(files=8, file_size=256 * MiB)
    assert total == 2 * GiB
    r = upload(server.url, body)
    assert r.status_code == 200, r.text
    doc = wait_state(server.url, r.json()["job_id"], timeout=900)
    assert doc["state"] == "OK", doc
    peak = peak_rss_mib(pid)
    growth = peak - baseline
    message = (
        f"server peak RSS {peak:.0f} MiB after a 2 GiB bundle, {baseline:.0f} MiB before: "
        f"grew {growth:.0f} MiB"
    )
    print(message)
    assert growth < 150, message
    archived = server.home / "archive" / str(doc["job_id"]) / "big"
    assert sum(p.stat().st_size for p in archived.iterdir()) == total
    assert temporaries(server.home / "archive") == []


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_kill_9_during_ingest_files(server_factory: Any) -> None:
    env = {"DATAFERRY_INGEST__CHUNK_SIZE": "65536"}
    server: Server = server_factory("a", env=env)
    body, total = synthetic_bundle(files=40, file_size=8 * MiB, seed=2)
    r = upload(server.url, body)
    assert r.status_code == 200, r.text
    job_id = r.json()["job_id"]
    deadline = time.monotonic() + 120
    with server.client() as c:
        while True:
            job = c.job(job_id)
            if job["task"] == "ingest files" and job["bytes_done"] > 16 * MiB:
                break
            assert job["state"] in ("queued", "running"), job
            assert time.monotonic() < deadline, job
            time.sleep(0.02)
    server.kill()  # SIGKILL in the middle of writing the archive
    archive = server.home / "archive"
    restarted = server.start()
    doc = wait_state(restarted.url, job_id, timeout=300)
    assert temporaries(archive) == [], "a partial file was left in the archive"
    if doc["state"] == "OK":
        assert (doc["task"], doc["task_percent"]) == ("ingest metadata", "100.0")
        folder = archive / str(job_id) / "big"
        assert len(list(folder.iterdir())) == 40
        assert sum(p.stat().st_size for p in folder.iterdir()) == total
        job = restarted.client().job(job_id)
        assert job["attempts"] >= 3, job  # the upload, the killed run, the resumed one
    else:
        assert doc["exception"], doc
        assert not (archive / str(job_id)).exists()
    spool = server.home / "spool" / "ingest" / str(job_id)
    assert not spool.exists()
    assert os.path.isdir(archive)
