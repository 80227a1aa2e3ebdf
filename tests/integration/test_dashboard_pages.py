"""The dashboard over plain HTTP, as a browser without JavaScript sees it: tables
rendered on the server, keyset paging over thousands of jobs, CSRF and login checks."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.support.browser import Browser, csrf_of
from tests.support.jobs import insert_jobs
from tests.support.server import Server

N = 2500


def job_ids(html: str) -> list[int]:
    return [int(x) for x in re.findall(r'<tr data-job="(\d+)">', html)]


def link(html: str, label: str) -> str:
    m = re.search(r'<a href="([^"]+)"[^>]*>[^<]*' + re.escape(label), html)
    assert m, f"no link {label!r}"
    return m.group(1).replace("&amp;", "&")


@pytest.fixture
def browser(server: Server) -> Any:
    with Browser(server.url) as c:
        yield c


def test_jobs_table_pages_filters_and_search(
    server: Server, browser: httpx.Client, database_url: str
) -> None:
    insert_jobs(database_url, N)
    page = browser.get("/")
    assert page.status_code == 200
    html = page.text
    assert job_ids(html) == list(range(N, N - 50, -1))
    assert f'<span data-field="total">{N}</span>' in html
    assert "failed <strong>357</strong>" in html  # counts by state
    assert '<progress max="100" value="100.0"' in html and "1000 B of 1000 B" in html

    # older, older, then newer again: keyset cursors, no offsets
    older = link(html, "Older")
    assert parse_qs(urlsplit(older).query)["before"] == [str(N - 49)]
    second = browser.get(older).text
    assert job_ids(second) == list(range(N - 50, N - 100, -1))
    third = browser.get(link(second, "Older")).text
    assert job_ids(third)[0] == N - 100
    back = browser.get(link(third, "Newer")).text
    assert job_ids(back) == job_ids(second)
    oldest = browser.get(link(html, "Oldest")).text
    assert job_ids(oldest) == list(range(50, 0, -1))
    assert "Older" not in oldest

    failed = browser.get("/", params={"state": "failed", "kind": "ingest", "limit": 20}).text
    ids = job_ids(failed)
    assert len(ids) == 20 and all(i % 35 == 0 for i in ids)
    assert f'<span data-field="total">{N // 35}</span>' in failed

    found = browser.get("/", params={"q": "1234"}, follow_redirects=False)
    assert found.status_code == 303 and found.headers["location"] == "/jobs/1234"
    assert "job 999999 does not exist" in browser.get("/", params={"q": "999999"}).text
    assert "not a job number" in browser.get("/", params={"q": "abc"}).text
    assert "unknown state" in browser.get("/", params={"state": "bogus"}).text

    # the REST API pages the same way
    api = httpx.get(f"{server.url}/api/v1/jobs", params={"before": 100, "limit": 3}).json()
    assert [j["job_id"] for j in api["jobs"]] == [99, 98, 97] and api["total"] == N
    api = httpx.get(f"{server.url}/api/v1/jobs", params={"after": 100, "limit": 3}).json()
    assert [j["job_id"] for j in api["jobs"]] == [103, 102, 101]
    both = httpx.get(f"{server.url}/api/v1/jobs", params={"after": 1, "before": 5})
    assert both.status_code == 422


def test_job_page_renders_without_javascript(
    server: Server, browser: httpx.Client, database_url: str
) -> None:
    insert_jobs(database_url, 7)
    html = browser.get("/jobs/7").text
    assert "Job #7" in html and "job 7: source vanished" in html
    assert "lab:run7" in html  # parameters
    assert re.search(r"<button type=\"submit\" >Retry</button>", html)
    assert re.search(r"<button type=\"submit\" disabled>Cancel</button>", html)
    missing = browser.get("/jobs/99")
    assert missing.status_code == 404 and "job 99 does not exist" in missing.text
    # every resource the page names is on this server
    assert not re.findall(r'(?:src|href)="(?:https?:)?//', html)


def test_actions_need_the_csrf_token(server: Server, browser: httpx.Client, tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    html = browser.get("/endpoints").text
    token = csrf_of(html)
    form = {"name": "here", "url": str(tmp_path / "d")}
    for bad in ({}, {"csrf": "forged"}):
        refused = browser.post("/endpoints", data={**form, **bad})
        assert refused.status_code == 403 and "CSRF" in refused.text
    other_site = browser.post(
        "/endpoints", data={**form, "csrf": token}, headers={"Origin": "http://evil.example"}
    )
    assert other_site.status_code == 403
    no_cookie = httpx.post(f"{server.url}/endpoints", data={**form, "csrf": token})
    assert no_cookie.status_code == 403
    with server.client() as c:
        assert c.endpoints() == []
    done = browser.post("/endpoints", data={**form, "csrf": token}, follow_redirects=False)
    assert done.status_code == 303
    with server.client() as c:
        assert [e["name"] for e in c.endpoints()] == ["here"]
    # bad input: a clear message and the form again
    again = browser.post("/endpoints", data={**form, "csrf": token})
    assert again.status_code == 409 and "already exists" in again.text
    missing = browser.post(
        "/transfers/new",
        data={
            "csrf": token,
            "source_endpoint": "here",
            "source_path": "nope",
            "destination_endpoint": "here",
            "destination_path": "x",
        },
    )
    assert missing.status_code == 404 and "does not exist" in missing.text


def test_login_with_a_token(server_factory: Any) -> None:
    token = "t0ken-for-the-dashboard"
    server: Server = server_factory("auth", env={"DATAFERRY_TOKENS": f'["{token}"]'})
    with Browser(server.url) as b:
        first = b.get("/endpoints", follow_redirects=False)
        assert first.status_code == 303 and first.headers["location"] == "/login?next=/endpoints"
        login = b.get(first.headers["location"]).text
        token_field = csrf_of(login)
        wrong = b.post("/login", data={"token": "nope", "csrf": token_field, "next": "/"})
        assert wrong.status_code == 401 and "invalid token" in wrong.text
        no_csrf = b.post("/login", data={"token": token, "next": "/"})
        assert no_csrf.status_code == 403
        ok = b.post(
            "/login",
            data={"token": token, "csrf": token_field, "next": "//evil.example/"},
            follow_redirects=False,
        )
        assert ok.status_code == 303 and ok.headers["location"] == "/"  # no open redirect
        cookie = ok.headers["set-cookie"].lower()
        for flag in ("httponly", "secure", "samesite=strict", "path=/"):
            assert flag in cookie
        assert b.get("/endpoints").status_code == 200
        assert b.get("/api/v1/jobs").status_code == 200  # the page's script uses the cookie
        assert token not in b.get("/").text
    assert httpx.get(f"{server.url}/api/v1/jobs").status_code == 401


def test_sink_page_shows_the_problem_in_every_state(server_factory: Any, database_url: str) -> None:
    """A sink's page said why it does not deliver only when it was idle: a paused sink
    whose stored definition is no longer valid (resuming it would not deliver) showed
    nothing, and a running sink whose changes keep failing showed its last error with
    nothing saying it is retrying now. Now the page has a Problem line in every state:
    the reason it cannot deliver (running, paused or idle), or the changes being
    retried and the error they last got; a dash when there is none."""
    from dataferry.db.engine import Database
    from dataferry.db.models.sinks import SinkRow
    from tests.support.receiver import FAIL_500, Receiver
    from tests.support.waiting import wait_for

    fast = {"DATAFERRY_SINK__LEASE_SECONDS": "2", "DATAFERRY_SINK__TICK_SECONDS": "0.05"}
    srv = server_factory("a", fast)
    receiver = Receiver(choose=lambda doc: FAIL_500).start()
    db = Database(database_url)

    def problem(name: str) -> str:
        html = web.get(f"/sinks/{name}").text
        m = re.search(r'<dd[^>]* data-field="problem">(.*?)</dd>', html, re.S)
        assert m, html
        return re.sub(r"<[^>]+>", "", m.group(1)).replace("&#39;", "'").strip()

    try:
        srv.cli("records", "put", "birds", '{"species": "emu"}')
        srv.cli(
            "sink", "add", "failing", "--collection", "birds", "--url", receiver.url,
            "--retry-interval", "0.05", "--retry-cap", "0.1",
        )  # fmt: skip
        srv.cli("sink", "add", "nowhere", "--collection", "birds")
        srv.cli("sink", "add", "ok", "--collection", "birds", "--url", receiver.url, "--paused")
        with Browser(srv.url) as web:
            wait_for(lambda: srv.client().sink("failing")["changes"]["retrying"] == 1, every=0.1)
            now = problem("failing")
            assert now.startswith("1 change retrying, last error:") and "500" in now, now
            srv.cli("sink", "pause", "failing")
            assert "500" in problem("failing")  # paused: the changes still wait for a retry

            assert problem("nowhere") == "no target URL configured"  # idle
            assert problem("ok") == "\u2013"  # paused, nothing wrong: a dash

            with db.session() as s:  # what an older version could have stored
                row = s.query(SinkRow).filter_by(name="ok").one()
                row.spec = {**row.spec, "timeout": 1e308}
            html = web.get("/sinks/ok").text
            assert 'data-field="state">paused</span>' in html
            assert problem("ok").startswith("definition no longer valid, change it: timeout")
    finally:
        receiver.stop()
        db.dispose()
