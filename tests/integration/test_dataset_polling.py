"""The consumer's steps against a real provider: status polls answering "bad request",
or raising because the provider is down, leave the state unchanged and count a retry
until retries run out; the webhook hears about final states."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from dataferry.config import Settings
from dataferry.db.models import SyncedDatasetRow
from tests.support.pair import TOKEN
from tests.support.server import Server

UID = "fac.poll-1"


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(json.loads(body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    httpd = HTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}/hook", received
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def consumer(tmp_path: Path, database_url: str, webhook: tuple[str, list[Any]]) -> Iterator[Any]:
    from dataferry.app import build

    settings = Settings(
        home=tmp_path / "consumer",
        database_url=database_url,
        datasets={"site_name": "home", "max_retries": 2, "webhook_url": webhook[0]},
    )
    core = build(settings)
    yield core
    core.stop()


def test_poll_trouble_keeps_state_counts_retries_then_fails_for_good(
    server_factory: Any, tmp_path: Path, consumer: Any, webhook: tuple[str, list[Any]]
) -> None:
    data = tmp_path / "data" / "exp"
    data.mkdir(parents=True)
    (data / "a.bin").write_bytes(b"a" * 1000)
    provider: Server = server_factory(
        "p", env={"DATAFERRY_DATASETS__SITE_NAME": "fac"}, db=f"sqlite:///{tmp_path}/p.db"
    )
    provider.cli("endpoint", "add", "data", str(tmp_path / "data"))
    provider.cli("site", "add", "home", "http://127.0.0.1:9", "--token", TOKEN, "--inbound", "in:x")
    job = provider.cli_json("dataset", "publish", UID, "--from", "data:exp")["job_id"]
    assert provider.wait_job(job)["state"] == "succeeded"

    consumer.sites.add("fac", provider.url, TOKEN, "provider")
    svc = consumer.consumer
    assert svc.notify("fac", UID, 1, {}).state.value == "registered"
    assert svc.notify("fac", UID, 1, {}).state.value == "registered"  # idempotent
    assert len(svc.history(UID)) == 1

    assert svc.step(UID)
    ds = svc.get(UID)
    assert ds.state.value == "transfer_requested" and ds.transfer_id is not None
    assert [f["path"] for f in ds.manifest] == ["a.bin"] and ds.destination == f"in:x/{UID}"

    # The provider no longer knows this transfer: it answers "bad request".
    with consumer.db.session() as s:
        s.execute(update(SyncedDatasetRow).values(transfer_id=999_999))
    for retry in (1, 2):
        assert svc.step(UID)
        ds = svc.get(UID)
        assert (ds.state.value, ds.retries) == ("transfer_requested", retry)
        assert "bad request" in ds.message
    assert svc.step(UID)  # the third one exhausts the retries
    ds = svc.get(UID)
    assert ds.state.value == "failed_permanent" and "retries exhausted" in ds.message
    assert not svc.step(UID)  # final: ticks leave it alone
    assert webhook[1][-1]["event"] == "dataset.failed_permanent"
    assert webhook[1][-1]["uid"] == UID

    # After a restart the request goes through again; then the provider goes away.
    assert svc.restart(UID).state.value == "registered"
    assert svc.step(UID)
    assert svc.get(UID).state.value == "transfer_requested"
    provider.kill()
    assert svc.step(UID)
    ds = svc.get(UID)
    assert (ds.state.value, ds.retries) == ("transfer_requested", 1)
    assert "raised" in ds.message
    history = svc.history(UID)
    assert [h["to"] for h in history] == [
        "registered",
        "transfer_requested",
        "transfer_requested",
        "transfer_requested",
        "failed_permanent",
        "registered",
        "transfer_requested",
        "transfer_requested",
    ]
