"""The real Pacifica uploader library (``pacifica-uploader``), unchanged, against dataferry:
its Bundler makes the tar, its Uploader sends it and polls ``/get_state`` the way the
Pacifica CLI does."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.server import Server

uploader = pytest.importorskip("pacifica.uploader", reason="pacifica-uploader is a dev dependency")


def _metadata(files: dict[str, Path]) -> Any:
    from pacifica.uploader.metadata import MetaData, MetaObj

    return MetaData(
        [
            MetaObj(destinationTable="Transactions.instrument", value=54, metaID="instrumentByID"),
            MetaObj(destinationTable="Transactions.project", value="1234a", metaID="ProjectID"),
            MetaObj(destinationTable="Transactions.submitter", value=10, metaID="logon"),
            MetaObj(
                destinationTable="TransactionKeyValue", key="Tag", value="pacifica", metaID="tag"
            ),
        ]
    )


def _file_data(files: dict[str, Path]) -> list[dict[str, Any]]:
    return [
        {
            "name": f"data/{rel}",
            "size": path.stat().st_size,
            "mtime": path.stat().st_mtime,
            "fileobj": open(path, "rb"),
        }
        for rel, path in files.items()
    ]


def _wait_like_pacifica_cli(up: Any, job_id: int) -> dict[str, Any]:
    # pacifica.cli.upload.wait_for_upload: poll while state is OK and not yet done.
    status: dict[str, Any] = up.getstate(job_id)
    deadline = time.monotonic() + 120
    while status["state"] == "OK" and (
        status["task"] != "ingest metadata" or int(float(status["task_percent"])) != 100
    ):
        assert time.monotonic() < deadline, status
        time.sleep(0.2)
        status = up.getstate(job_id)
    return status


@pytest.fixture
def tree(tmp_path: Path) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for rel, size in [("a/one.txt", 10), ("a/b/two.bin", 300_000), ("three.dat", 0)]:
        p = tmp_path / "src" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(os.urandom(size))
        files[rel] = p
    return files


def _check_archived(server: Server, job_id: int, files: dict[str, Path]) -> None:
    tx = httpx.get(f"{server.url}/api/v1/transactions/{job_id}", timeout=10).json()
    assert (tx["project"], tx["instrument"], tx["submitter"]) == ("1234a", "54", "10")
    assert {"key": "Tag", "value": "pacifica"} in tx["key_values"]
    got = {f["path"]: f for f in tx["files"]}
    assert set(got) == set(files)
    for rel, path in files.items():
        data = (server.home / "archive" / got[rel]["archive_path"]).read_bytes()
        assert data == path.read_bytes()
        assert got[rel]["hashsum"] == hashlib.sha1(data).hexdigest()


def test_pacifica_uploader_with_content_length(
    server: Server, tree: dict[str, Path], tmp_path: Path
) -> None:
    from pacifica.uploader import Uploader
    from pacifica.uploader.bundler import Bundler

    bundle = tmp_path / "bundle.tar"
    with open(bundle, "wb") as out:
        Bundler(_metadata(tree), _file_data(tree)).stream(out)
    up = Uploader(upload_url=f"{server.url}/upload", status_url=f"{server.url}/get_state")
    with open(bundle, "rb") as body:
        job_id = up.upload(body, content_length=bundle.stat().st_size)
    status = _wait_like_pacifica_cli(up, job_id)
    assert status["state"] == "OK", status
    assert (status["task"], status["task_percent"]) == ("ingest metadata", "100.0")
    _check_archived(server, int(job_id), tree)


def test_pacifica_uploader_streaming_through_a_pipe(server: Server, tree: dict[str, Path]) -> None:
    """As the Pacifica CLI does: the bundler writes into a pipe while the uploader sends it."""
    from pacifica.uploader import Uploader
    from pacifica.uploader.bundler import Bundler

    rfd, wfd = os.pipe()
    reader, writer = os.fdopen(rfd, "rb"), os.fdopen(wfd, "wb")

    def make() -> None:
        try:
            Bundler(_metadata(tree), _file_data(tree)).stream(writer)
        finally:
            writer.close()

    thread = threading.Thread(target=make, daemon=True)
    thread.start()
    up = Uploader(upload_url=f"{server.url}/upload", status_url=f"{server.url}/get_state")
    job_id = up.upload(reader)
    thread.join()
    reader.close()
    status = _wait_like_pacifica_cli(up, job_id)
    assert status["state"] == "OK", status
    _check_archived(server, int(job_id), tree)


def test_pacifica_uploader_sees_failure(server: Server, tmp_path: Path) -> None:
    from pacifica.uploader import Uploader

    junk = tmp_path / "junk"
    junk.write_bytes(os.urandom(10_000))
    up = Uploader(upload_url=f"{server.url}/upload", status_url=f"{server.url}/get_state")
    with open(junk, "rb") as body:
        job_id = up.upload(body, content_length=10_000)
    status = _wait_like_pacifica_cli(up, job_id)
    assert (status["state"], status["task"]) == ("FAILED", "open tar")
    assert status["exception"]


UPLOADER_JSON = [
    {"destinationTable": "Transactions.project", "metaID": "ProjectID", "value": "1234a"},
    {"destinationTable": "Transactions.instrument", "metaID": "InstrumentId", "value": "54"},
    {"destinationTable": "Transactions.submitter", "metaID": "logon", "value": "10"},
    {
        "destinationTable": "TransactionKeyValue",
        "key": "Tag",
        "metaID": "tag",
        "value": "pacifica",
    },
]


def test_pacifica_cli_upload(server: Server, tree: dict[str, Path], tmp_path: Path) -> None:
    """``pacifica-cli upload DIR`` (the Pacifica CLI, unchanged): it sizes the tar, streams
    it with a Content-Length, then polls until ``ingest metadata`` reaches 100."""
    import json
    import shutil
    import subprocess
    import sys

    cli = Path(sys.executable).parent / "pacifica-cli"
    if not cli.exists():
        pytest.skip("pacifica-cli is a dev dependency")
    # Every metadata value is given, so the CLI needs no Pacifica policy server.
    config = tmp_path / "uploader.json"
    config.write_text(json.dumps([{**e, "query_results": []} for e in UPLOADER_JSON]))
    work = tmp_path / "work"
    shutil.copytree(tmp_path / "src", work / "run")
    (tmp_path / "home").mkdir()
    env = {
        **os.environ,
        "HOME": str(tmp_path / "home"),
        "UPLOAD_URL": f"{server.url}/upload",
        "UPLOAD_STATUS_URL": f"{server.url}/get_state",
        "UPLOADER_CONFIG": str(config),
    }
    result = subprocess.run(
        [str(cli), "upload", "run"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    status = json.loads(result.stdout[result.stdout.index("{") :])
    assert (status["state"], status["task"], status["task_percent"]) == (
        "OK",
        "ingest metadata",
        "100.0",
    ), status
    tx = httpx.get(f"{server.url}/api/v1/transactions/{status['job_id']}", timeout=10).json()
    assert (tx["project"], tx["instrument"], tx["submitter"]) == ("1234a", "54", "10")
    assert {f["path"] for f in tx["files"]} == {f"run/{rel}" for rel in tree}
