"""Synced datasets stored before notify checked UIDs (commit 0c829ea) whose UID no URL
can carry: the first tick that meets one moves it to ``failed_permanent`` once, with
the reason, without a request to the provider; later ticks leave it alone."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import insert

from dataferry.client import segment
from dataferry.config import Settings
from dataferry.db.base import utcnow
from dataferry.db.models import SyncedDatasetEventRow, SyncedDatasetRow
from dataferry.errors import Conflict
from tests.support.answers import send_body
from tests.support.pair import TOKEN

# What notify took before it checked UIDs: anything with a dot.
UNUSABLE = ["fac.exp\x16", "fac.a/../../peer", "fac.a b", "fac.x\n", "fac.", "fac.é"]
GOOD = "fac.good-1"


@pytest.fixture
def provider() -> Iterator[tuple[str, list[str]]]:
    """A provider that knows no dataset (404 to everything) and notes each path asked."""
    asked: list[str] = []

    class NoDatasets(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            asked.append(self.path)
            body = b'{"error": "not_found", "detail": "no such dataset"}'
            send_body(self, 404, body)

        do_GET = do_POST = _answer

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), NoDatasets)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}", asked
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def consumer(tmp_path: Path, database_url: str) -> Iterator[Any]:
    from dataferry.app import build

    settings = Settings(
        home=tmp_path / "consumer",
        database_url=database_url,
        datasets={"site_name": "home", "max_retries": 3},
    )
    core = build(settings)
    yield core
    core.stop()


def store_as_before(core: Any, uid: str, state: str = "registered", **fields: Any) -> None:
    """The rows an old notify stored for ``uid`` (its state moved on by ``fields``)."""
    now = utcnow()
    row = {
        "uid": uid,
        "site": "fac",
        "state": state,
        "meta": {},
        "manifest": [],
        "version": 1,
        "destination": "",
        "transfer_id": None,
        "retries": 0,
        "next_at": now,
        "message": "announced by fac",
        "revision": 0,
        "created": now,
        "updated": now,
        **fields,
    }
    with core.db.session() as s:
        s.execute(insert(SyncedDatasetRow).values(**row))
        s.execute(
            insert(SyncedDatasetEventRow).values(
                uid=uid, from_state="", to_state="registered", reason="announced by fac", at=now
            )
        )


def test_a_stored_uid_no_url_can_carry_fails_for_good_once(
    consumer: Any, provider: tuple[str, list[str]], caplog: pytest.LogCaptureFixture
) -> None:
    url, asked = provider
    consumer.sites.add("fac", url, TOKEN, "provider")
    for uid in UNUSABLE:
        store_as_before(consumer, uid)
    # further along, as far as an old version could have moved one
    store_as_before(
        consumer, "fac.polled\x01", "in_progress", transfer_id=7, destination="in:x/fac.polled"
    )
    store_as_before(consumer, "fac.retry me", "failed_retryable", retries=1)
    store_as_before(consumer, GOOD)
    bad = [*UNUSABLE, "fac.polled\x01", "fac.retry me"]
    svc = consumer.consumer

    caplog.set_level(logging.INFO, logger="dataferry.datasets.consumer")
    assert svc.tick() == len(bad) + 1  # the good one was refused by the provider
    assert asked == [f"/api/v1/datasets/{GOOD}"]  # no request names an unusable UID
    moved = {}
    for uid in bad:
        ds = svc.get(uid)
        assert ds.state.value == "failed_permanent", (uid, ds)
        assert "cannot be asked for" in ds.message and "must be <site-prefix>.<id>" in ds.message
        history = svc.history(uid)
        assert [h["to"] for h in history] == ["registered", "failed_permanent"], history
        moved[uid] = ds.updated
    assert svc.get(GOOD).state.value == "failed_permanent"  # the provider said 404

    for _ in range(3):  # later ticks: nothing more happens to them, nothing is logged
        caplog.clear()
        assert svc.tick() == 0
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
    assert asked == [f"/api/v1/datasets/{GOOD}"]
    for uid in bad:
        assert svc.get(uid).updated == moved[uid]
        assert len(svc.history(uid)) == 2


def test_restarting_a_dataset_whose_uid_no_url_can_carry_is_refused_at_every_door(
    consumer: Any, provider: tuple[str, list[str]], server_factory: Any
) -> None:
    """Before, restart sent it back to ``registered`` and the next tick failed it
    again: a restart that could never help, said to have worked."""
    url, asked = provider
    consumer.sites.add("fac", url, TOKEN, "provider")
    bad = ["fac.a b", "fac.a/../../peer", "fac.é", "fac.x\n"]
    for uid in bad:
        store_as_before(consumer, uid)
    svc = consumer.consumer
    assert svc.tick() == len(bad)
    before = {uid: (svc.get(uid), svc.history(uid)) for uid in bad}

    def refused(uid: str) -> str:
        return (
            f"dataset {uid!r} cannot be restarted: its UID is not <site-prefix>.<id> "
            "(letters, digits, '.', '_', '-'), so no request to the provider can name it"
        )

    for uid in bad:
        with pytest.raises(Conflict) as caught:
            svc.restart(uid)
        assert caught.value.message == refused(uid)

    server = server_factory()
    r = httpx.post(f"{server.url}/api/v1/synced-datasets/{segment('fac.a b')}/restart")
    assert (r.status_code, r.json()["detail"]) == (409, refused("fac.a b")), r.text
    # A UID holding "/" reaches no REST route (nor the CLI, which uses them): RPC only.
    for uid in ("fac.x\n", "fac.a/../../peer"):
        call = {"jsonrpc": "2.0", "id": 1, "method": "datasets.restart", "params": [uid]}
        error = httpx.post(f"{server.url}/jsonrpc", json=call).json()["error"]
        assert refused(uid) in error["message"], error
    for uid in ("fac.é", "fac.a b"):
        result = server.cli("dataset", "restart", uid, check=False)
        assert result.returncode == 1, result
        assert " ".join(result.stderr.split()) == f"error: {refused(uid)} (HTTP 409)", result.stderr

    for uid in bad:  # nothing moved
        assert (svc.get(uid), svc.history(uid)) == before[uid]
    assert asked == []
