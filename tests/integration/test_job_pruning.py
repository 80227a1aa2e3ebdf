"""Old finished jobs are deleted with their per-file rows: by hand (CLI, REST,
JSON-RPC) and on their own (jobs.keep_finished_days); what other records name stays."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select, update

from dataferry.db.base import utcnow
from dataferry.db.engine import Database
from dataferry.db.models import JobFileRow, JobRow
from tests.support.browser import Browser, csrf_of
from tests.support.jobs import insert_jobs
from tests.support.server import Server


def age(database_url: str, job_ids: list[int], days: float) -> None:
    """Make jobs look as if they ended ``days`` ago (test set-up, not a shortcut past
    the service: nothing but time would do it otherwise)."""
    db = Database(database_url)
    try:
        with db.session() as s:
            s.execute(
                update(JobRow)
                .where(JobRow.id.in_(job_ids))
                .values(updated=utcnow() - timedelta(days=days))
            )
    finally:
        db.dispose()


def rows(database_url: str) -> tuple[list[int], int]:
    """(job ids, per-file rows) in the database."""
    db = Database(database_url)
    try:
        with db.read() as s:
            ids = sorted(s.scalars(select(JobRow.id)))
            files = s.scalar(select(func.count()).select_from(JobFileRow)) or 0
            return ids, files
    finally:
        db.dispose()


def add_jobs(server: Server, tmp_path: Path) -> dict[str, int]:
    """Jobs of several kinds and states, all finished but one."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    (src / "run").mkdir(parents=True)
    dst.mkdir()
    for i in range(3):
        (src / "run" / f"{i}.txt").write_text(str(i))
    server.cli("endpoint", "add", "src", str(src))
    server.cli("endpoint", "add", "dst", str(dst))
    ids = {}
    for name in ("old", "recent"):
        doc = server.cli_json("transfer", "src:run", f"dst:{name}", "--wait")
        assert doc["state"] == "succeeded", doc
        ids[name] = doc["job_id"]
    (dst / "clash" / "0.txt").mkdir(parents=True)  # a folder where a file must go
    failed = server.cli_json("transfer", "src:run", "dst:clash", "--wait", check=False)
    assert failed["state"] == "failed", failed
    ids["old_failed"] = failed["job_id"]
    return ids


def test_prune_by_hand_keeps_recent_unfinished_and_named_jobs(
    server: Server, tmp_path: Path, database_url: str
) -> None:
    ids = add_jobs(server, tmp_path)
    # five more, finished: jobs 4 and the 5th of kind ingest (an ingest transaction
    # names its job, so it is never pruned)
    insert_jobs(database_url, 5)
    inserted = [i for i in rows(database_url)[0] if i not in ids.values()]
    ingest = inserted[4]
    age(database_url, [ids["old"], ids["old_failed"], *inserted], 40)
    before_ids, before_files = rows(database_url)
    assert before_files == 9

    for bad in (-1, "30", True, None, 1e9, [30]):
        r = httpx.post(f"{server.url}/api/v1/jobs/prune", json={"older_than_days": bad})
        assert r.status_code == 422, (bad, r.text)
        assert "older_than_days" in r.text
    nan = httpx.post(
        f"{server.url}/api/v1/jobs/prune",
        content=b'{"older_than_days": NaN}',
        headers={"Content-Type": "application/json"},
    )
    assert nan.status_code == 422
    assert rows(database_url) == (before_ids, before_files)

    shown = server.cli("prune-jobs", "--older-than-days", "30").stdout
    assert "deleted 6 finished jobs" in shown
    remaining, files = rows(database_url)
    assert remaining == sorted([ids["recent"], ingest])
    assert files == 3  # the recent copy's; the old copy's and the failed job's went with them
    with server.client() as c:
        assert c.job(ids["recent"])["state"] == "succeeded"
    gone = httpx.get(f"{server.url}/api/v1/jobs/{ids['old']}")
    assert gone.status_code == 404

    # JSON-RPC says the same, and a second prune finds nothing more
    call: dict[str, Any] = {"jsonrpc": "2.0", "method": "jobs.prune", "params": [30], "id": 1}
    assert httpx.post(f"{server.url}/jsonrpc", json=call).json()["result"] == {"deleted": 0}
    negative = {**call, "params": [-3]}
    err = httpx.post(f"{server.url}/jsonrpc", json=negative).json()["error"]
    assert err["code"] == -32602 and "older_than_days" in err["message"]


def test_prune_from_the_dashboard(server: Server, tmp_path: Path, database_url: str) -> None:
    ids = add_jobs(server, tmp_path)
    age(database_url, [ids["old"], ids["old_failed"]], 40)
    before = rows(database_url)
    with Browser(server.url) as browser:
        page = browser.get("/").text
        assert "Delete old finished jobs" in page and "jobs.keep_finished_days" in page
        token = csrf_of(page)
        forged = browser.post("/jobs/prune", data={"older_than_days": "30", "csrf": "forged"})
        assert forged.status_code == 403
        for bad, says in (
            ("", "not ''"),
            ("soon", "not 'soon'"),
            ("-1", "not '-1.0'"),
            ("nan", "not 'nan'"),
            ("1e999", "not 'inf'"),
        ):
            shown = browser.post(
                "/jobs/prune",
                data={"older_than_days": bad, "csrf": token},
                follow_redirects=True,
            )
            assert shown.status_code == 200 and "must be a number of days" in shown.text, bad
            assert says in shown.text.replace("&#39;", "'"), (bad, shown.text[-2000:])
            token = csrf_of(shown.text)  # the page it lands on may carry a fresh session
        assert rows(database_url) == before
        done = browser.post(
            "/jobs/prune", data={"older_than_days": "30", "csrf": token}, follow_redirects=True
        )
        assert done.status_code == 200 and "deleted 2 finished jobs" in done.text
    assert rows(database_url)[0] == [ids["recent"]]


def test_a_retried_job_is_not_pruned(server: Server, tmp_path: Path, database_url: str) -> None:
    ids = add_jobs(server, tmp_path)
    age(database_url, [ids["old_failed"]], 40)
    # retried: queued again (and failing again), its 'updated' is now
    server.cli("retry", str(ids["old_failed"]))
    assert httpx.post(f"{server.url}/api/v1/jobs/prune", json={"older_than_days": 30}).json() == {
        "deleted": 0
    }
    assert ids["old_failed"] in rows(database_url)[0]


def test_keep_finished_days_prunes_on_its_own(
    server_factory: Any, tmp_path: Path, database_url: str
) -> None:
    first: Server = server_factory("a")
    ids = add_jobs(first, tmp_path)
    age(database_url, [ids["old"]], 10)
    first.stop()
    server_factory("b", env={"DATAFERRY_JOBS__KEEP_FINISHED_DAYS": "7"})
    deadline = time.monotonic() + 30
    while ids["old"] in rows(database_url)[0]:
        assert time.monotonic() < deadline, "the scheduler did not prune"
        time.sleep(0.2)
    assert ids["recent"] in rows(database_url)[0]
