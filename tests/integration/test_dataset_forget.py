"""Forgetting a dataset delivered to us: a finished one's record and history go (its
files stay); one a tick may still move is refused; every door says the same."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx

from dataferry.client import segment
from dataferry.db.base import utcnow
from dataferry.db.engine import Database
from tests.integration.test_dataset_unusable_uids import store_as_before
from tests.support.browser import Browser, csrf_of
from tests.support.server import Server


def test_forget_a_finished_dataset_at_every_door(
    server_factory: Any, tmp_path: Path, database_url: str
) -> None:
    server: Server = server_factory("home", env={"DATAFERRY_DATASETS__SITE_NAME": "home"})
    db = Database(database_url)
    later = utcnow() + timedelta(days=1)  # no tick takes them up meanwhile
    try:
        rows = SimpleNamespace(db=db)
        store_as_before(rows, "fac.done", "complete", next_at=None)
        store_as_before(rows, "fac.broken", "failed_permanent", next_at=None)
        store_as_before(rows, "fac.old", "complete", next_at=None)
        store_as_before(rows, "fac.a/b", "failed_permanent", next_at=None)
        store_as_before(rows, "fac.moving", "in_progress", transfer_id=3, next_at=later)
    finally:
        db.dispose()
    api = f"{server.url}/api/v1/synced-datasets"

    assert "dataset fac.done: forgotten" in server.cli("dataset", "forget", "fac.done").stdout
    assert httpx.get(f"{api}/fac.done").status_code == 404
    assert httpx.get(f"{api}/fac.done/history").status_code == 404
    gone = httpx.delete(f"{api}/fac.old")
    assert gone.status_code == 204
    with Browser(server.url) as browser:
        page = browser.get("/datasets/synced/fac.moving").text
        assert re.search(r"<button type=\"submit\" disabled title=\"[^\"]*\">Forget", page)
        page = browser.get("/datasets/synced/fac.broken").text
        form = {"csrf": csrf_of(page)}
        done = browser.post("/datasets/synced/fac.broken/forget", data=form, follow_redirects=True)
        assert "dataset fac.broken forgotten (its files stay)" in done.text
    # a UID with '/' cannot be named in a REST path; the RPC doors take it
    call = {"jsonrpc": "2.0", "method": "datasets.forget", "params": ["fac.a/b"], "id": 1}
    assert httpx.post(f"{server.url}/jsonrpc", json=call).json()["result"] == {
        "forgotten": "fac.a/b"
    }

    refused = httpx.delete(f"{api}/fac.moving")
    assert refused.status_code == 409 and "is in_progress" in refused.text
    assert httpx.get(f"{api}/fac.moving").json()["state"] == "in_progress"
    missing = server.cli("dataset", "forget", "fac.nope", check=False)
    assert missing.returncode == 1 and "does not exist" in missing.stderr
    assert [d["uid"] for d in httpx.get(api).json()["datasets"]] == ["fac.moving"]
    assert httpx.delete(f"{api}/{segment('fac.moving')}").status_code == 409
