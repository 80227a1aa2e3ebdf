"""The dashboard in a real Chromium against real servers: transfers from the form,
failure and retry, endpoints with write-only secrets, token login."""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path
from typing import Any

from dataferry.api.web.format import human_bytes
from tests.support.server import Server

MiB = 1024 * 1024
SLOW_COPY = {
    # one file at a time in small chunks, progress stored often, leases that outlast a pause
    "DATAFERRY_TRANSFER__CONCURRENCY": "1",
    "DATAFERRY_TRANSFER__CHUNK_SIZE": "65536",
    "DATAFERRY_JOBS__LEASE_SECONDS": "60",
    "DATAFERRY_WEB__POLL_SECONDS": "1",
}


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect as pw_expect

    return pw_expect(locator)


def wait_for(check: Any, what: Any, timeout: float = 120) -> Any:
    """Poll ``check`` until true; ``what()`` describes the wait when it times out."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what()}"
        time.sleep(0.02)


def fill_transfer_form(
    page: Any, url: str, src: str, src_path: str, dst: str, dst_path: str
) -> int:
    page.goto(f"{url}/transfers/new")
    page.get_by_label("Source endpoint").select_option(src)
    page.get_by_label("Path on the source").fill(src_path)
    page.get_by_label("Destination endpoint").select_option(dst)
    page.get_by_label("Path on the destination").fill(dst_path)
    page.get_by_label("Mode").select_option("copy")
    page.get_by_label("Checksum").select_option("sha256")
    page.get_by_role("button", name="Start transfer").click()
    page.wait_for_url(re.compile(r"/jobs/\d+$"))
    return int(page.url.rsplit("/", 1)[1])


def test_transfer_from_the_form_advances_to_succeeded(
    server_factory: Any, open_page: Any, shots: Any, tmp_path: Path
) -> None:
    src, dst = tmp_path / "lab", tmp_path / "archive"
    (src / "run1" / "raw").mkdir(parents=True)
    dst.mkdir()
    with open(src / "run1" / "raw" / "big.bin", "wb") as f:
        block = bytes(range(256)) * 4096
        for _ in range(192 * MiB // len(block)):
            f.write(block)
    (src / "run1" / "notes.txt").write_text("calibration ok\n")
    # The dashboard's server runs no jobs; the worker does, so it can be paused mid-copy
    # while the browser keeps talking to the dashboard.
    web: Server = server_factory("web", env={**SLOW_COPY, "DATAFERRY_JOBS__WORKERS": "0"})
    worker: Server = server_factory("worker", env=SLOW_COPY)
    web.cli("endpoint", "add", "lab", str(src))
    web.cli("endpoint", "add", "archive", str(dst))

    watched = open_page(web.url)
    page = watched.page
    job_id = fill_transfer_form(page, web.url, "lab", "run1", "archive", "2026/run1")

    with web.client() as c:

        def partial() -> bool:
            doc = c.job(job_id)
            assert doc["state"] in ("queued", "running"), (doc, worker.log.read_text()[-2000:])
            return bool(0 < doc["bytes_done"] < (doc["bytes_total"] or 0))

        wait_for(
            partial,
            lambda: f"partial progress: {c.job(job_id)}\n{worker.log.read_text()[-2000:]}",
        )
        assert worker.proc is not None
        worker.proc.send_signal(signal.SIGSTOP)
        try:
            frozen = c.job(job_id)
            assert frozen["state"] == "running", frozen
            done, total = frozen["bytes_done"], frozen["bytes_total"]
            assert 0 < done < total, frozen
            box = page.locator("[data-live-job]")
            expect(box.locator('[data-field="amount"]')).to_have_text(
                f"{human_bytes(done)} of {human_bytes(total)}"
            )
            value = float(box.locator("progress").get_attribute("value") or "0")
            assert 0 < value < 100
            expect(box.locator('[data-field="rate"]')).to_have_text(re.compile(r"/s$"))
            expect(box.locator('[data-field="eta"]')).to_have_text(re.compile(r"^ETA "))
            expect(page.locator('h1 [data-field="state"]')).to_have_text("running")
            shots(page, "job-running")
            page.goto(f"{web.url}/")
            row = page.locator(f'tr[data-job="{job_id}"]')
            expect(row.locator('[data-field="state"]')).to_have_text("running")
            shots(page, "jobs")
        finally:
            worker.proc.send_signal(signal.SIGCONT)

    # the jobs table follows the job to the end without a reload
    row = page.locator(f'tr[data-job="{job_id}"]')
    expect(row.locator('[data-field="state"]')).to_have_text("succeeded", timeout=120_000)
    expect(row.locator('[data-field="percent"]')).to_have_text("100.0 %")
    page.get_by_role("link", name=f"#{job_id}").click()
    expect(page.locator('h1 [data-field="state"]')).to_have_text("succeeded")
    expect(page.locator('[data-live-job] [data-field="percent"]')).to_have_text("100.0 %")
    files = page.locator("table.files tbody tr")
    expect(files).to_have_count(2)
    expect(files.filter(has_text="raw/big.bin")).to_contain_text("done")
    expect(files.filter(has_text="notes.txt")).to_contain_text(re.compile(r"[0-9a-f]{64}"))
    shots(page, "job-succeeded")
    assert (dst / "2026" / "run1" / "notes.txt").read_text() == "calibration ok\n"
    assert watched.foreign_requests() == []


def test_failed_transfer_shows_error_then_retry_succeeds(
    server: Server, open_page: Any, shots: Any, tmp_path: Path
) -> None:
    src, dst, outside = tmp_path / "src", tmp_path / "dst", tmp_path / "outside"
    (src / "d").mkdir(parents=True)
    dst.mkdir()
    outside.mkdir()
    (src / "d" / "f.txt").write_text("data")
    (outside / "secret.txt").write_text("not yours")
    (src / "d" / "escape").symlink_to(outside)  # leaves the endpoint's root: the job fails
    server.cli("endpoint", "add", "src", str(src))
    server.cli("endpoint", "add", "dst", str(dst))
    watched = open_page(server.url)
    page = watched.page
    job_id = fill_transfer_form(page, server.url, "src", "d", "dst", "copy")

    expect(page.locator('h1 [data-field="state"]')).to_have_text("failed", timeout=120_000)
    error = page.locator('[data-field="error"]')
    expect(error).to_be_visible()
    expect(error).to_contain_text("outside its root through a link")
    expect(page.locator("section", has_text="Attempts").locator("tbody")).to_contain_text(
        "outside its root"
    )
    expect(page.get_by_role("button", name="Cancel")).to_be_disabled()
    shots(page, "job-failed")

    (src / "d" / "escape").unlink()
    page.get_by_role("button", name="Retry").click()
    expect(page.get_by_role("status")).to_have_text("queued again")
    expect(page.locator('h1 [data-field="state"]')).to_have_text("succeeded", timeout=120_000)
    expect(page.locator('[data-field="error-box"]')).to_be_hidden()
    assert (dst / "copy" / "f.txt").read_text() == "data"
    with server.client() as c:
        assert c.job(job_id)["state"] == "succeeded"
    assert watched.foreign_requests() == []


def test_endpoint_secret_is_write_only(
    server: Server, open_page: Any, shots: Any, tmp_path: Path
) -> None:
    # an SFTP endpoint: a password is one of its secrets (a local folder has none);
    # nothing connects to it here
    store = "sftp://lab@files.example.org/data"
    secret = "s3cr3t-Value-7a1f"
    watched = open_page(server.url)
    page = watched.page
    page.goto(f"{server.url}/endpoints")
    page.get_by_label("Name", exact=True).fill("vault")
    page.get_by_label("URL or local path").fill(store)
    page.get_by_label("Options (key=value, one per line)").fill("read_only=true")
    page.get_by_label("Secret 1 name").fill("password")
    page.get_by_label("Secret 1 value").fill(secret)
    page.get_by_role("button", name="Add endpoint").click()
    expect(page.get_by_role("status")).to_have_text("endpoint vault added")
    row = page.locator('tr[data-endpoint="vault"]')
    expect(row).to_contain_text("password (set)")
    expect(row).to_contain_text("read_only=true")
    shots(page, "endpoints")

    # a refused form comes back without the secret typed into it
    page.get_by_label("Name", exact=True).fill("vault")
    page.get_by_label("URL or local path").fill(store)
    page.get_by_label("Secret 1 name").fill("password")
    page.get_by_label("Secret 1 value").fill(secret)
    page.get_by_role("button", name="Add endpoint").click()
    expect(page.get_by_role("alert")).to_contain_text("already exists")
    expect(page.get_by_label("Secret 1 value")).to_have_value("")

    for path in ("/endpoints", "/api/v1/endpoints", "/api/v1/endpoints/vault", "/transfers/new"):
        page.goto(server.url + path)
        assert secret not in page.content()
    assert watched.bodies, "responses were recorded"
    assert not [b for b in watched.bodies if secret in b]
    with server.client() as c:
        assert c.endpoints()[0]["secrets"] == ["password"]

    page.goto(f"{server.url}/endpoints")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Remove endpoint vault").click()
    expect(page.get_by_role("status")).to_have_text("endpoint vault removed")
    expect(page.locator('tr[data-endpoint="vault"]')).to_have_count(0)
    assert watched.foreign_requests() == []


def test_token_login_and_refusals(
    server_factory: Any, open_page: Any, shots: Any, tmp_path: Path
) -> None:
    token = "tok-" + "9" * 24
    server: Server = server_factory(
        "auth", env={"DATAFERRY_TOKENS": f'["{token}"]', "DATAFERRY_TOKEN": token}
    )
    (tmp_path / "d").mkdir()
    server.cli("endpoint", "add", "here", str(tmp_path / "d"))

    stranger = open_page(server.url).page
    for path in ("/", "/endpoints", "/jobs/1", "/transfers/new"):
        stranger.goto(server.url + path)
        expect(stranger).to_have_url(re.compile(r"/login\?next="))
    api = stranger.request.get(f"{server.url}/api/v1/endpoints")
    assert api.status == 401
    # an action without a session is refused and changes nothing
    refused = stranger.request.post(
        f"{server.url}/endpoints/here/delete", form={"csrf": "x"}, max_redirects=0
    )
    assert refused.status in (303, 403)
    with server.client() as c:
        assert [e["name"] for e in c.endpoints()] == ["here"]

    watched = open_page(server.url)
    page = watched.page
    page.goto(f"{server.url}/endpoints")
    expect(page).to_have_url(re.compile(r"/login\?next=/endpoints"))
    page.get_by_label("API token").fill("wrong-token")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_have_text("invalid token")
    shots(page, "login")
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{server.url}/endpoints")
    expect(page.locator('tr[data-endpoint="here"]')).to_be_visible()

    cookie = next(c for c in page.context.cookies() if c["name"] == "dataferry_session")
    assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Strict"
    assert token not in cookie["value"]
    assert page.evaluate("document.cookie") == ""  # HTTP-only: scripts cannot read it

    # the page's script may use the API with the cookie; a write needs the CSRF header
    status = page.evaluate("fetch('/api/v1/endpoints').then(r => r.status)")
    assert status == 200
    no_csrf = page.evaluate(
        "fetch('/api/v1/endpoints/here', {method: 'DELETE'}).then(r => r.status)"
    )
    assert no_csrf == 403
    bad = page.request.post(f"{server.url}/endpoints/here/delete", form={"csrf": "forged"})
    assert bad.status == 403
    with server.client() as c:
        assert [e["name"] for e in c.endpoints()] == ["here"]

    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/login"))
    page.goto(f"{server.url}/")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    assert watched.foreign_requests() == []


def test_browse_an_endpoint_and_transfer_from_a_folder(
    server: Server, open_page: Any, tmp_path: Path
) -> None:
    src, dst = tmp_path / "lab", tmp_path / "archive"
    (src / "run1" / "raw").mkdir(parents=True)
    (src / "run1" / "raw" / "counts.txt").write_text("1\n2\n3\n")
    (src / "other.txt").write_text("not this one")
    dst.mkdir()
    server.cli("endpoint", "add", "lab", str(src))
    server.cli("endpoint", "add", "archive", str(dst))
    watched = open_page(server.url)
    page = watched.page
    page.goto(f"{server.url}/endpoints")
    page.get_by_role("link", name="Files of lab").click()
    expect(page.locator("tr[data-path]")).to_have_count(2)
    page.get_by_role("link", name="run1/").click()
    page.get_by_role("link", name="raw/").click()
    row = page.locator('tr[data-path="run1/raw/counts.txt"]')
    expect(row).to_contain_text("6 B")
    page.get_by_role("link", name="Up one folder").click()
    expect(page.locator('nav.crumbs [aria-current="location"]')).to_have_text("run1")
    page.get_by_role("link", name="Transfer from here").click()
    expect(page.get_by_label("Source endpoint")).to_have_value("lab")
    expect(page.get_by_label("Path on the source")).to_have_value("run1")
    page.get_by_label("Destination endpoint").select_option("archive")
    page.get_by_label("Path on the destination").fill("2026/run1")
    page.get_by_role("button", name="Start transfer").click()
    page.wait_for_url(re.compile(r"/jobs/\d+$"))
    job_id = int(page.url.rsplit("/", 1)[1])
    assert server.wait_job(job_id)["state"] == "succeeded"
    assert (dst / "2026" / "run1" / "raw" / "counts.txt").read_text() == "1\n2\n3\n"
    assert not (dst / "2026" / "run1" / "other.txt").exists()


def test_a_schedule_from_the_form_runs_now_and_pauses(
    server: Server, open_page: Any, tmp_path: Path
) -> None:
    src, dst = tmp_path / "lab", tmp_path / "archive"
    (src / "run1").mkdir(parents=True)
    (src / "run1" / "a.txt").write_text("a\n")
    dst.mkdir()
    server.cli("endpoint", "add", "lab", str(src))
    server.cli("endpoint", "add", "archive", str(dst))
    page = open_page(server.url).page
    page.goto(f"{server.url}/transfers/new")
    page.get_by_label("Source endpoint").select_option("lab")
    page.get_by_label("Path on the source").fill("run1")
    page.get_by_label("Destination endpoint").select_option("archive")
    page.get_by_label("Path on the destination").fill("nightly")
    page.get_by_label("Mode").select_option("sync")
    page.get_by_label("Schedule name").fill("nightly")
    page.get_by_label("Every").fill("1d")
    page.get_by_label("First run").fill("2100-01-01T02:00:00Z")
    page.get_by_role("button", name="Add schedule").click()
    page.wait_for_url(re.compile(r"/schedules\?"))
    expect(page.get_by_role("status")).to_contain_text("schedule nightly added")
    row = page.locator('tr[data-schedule="nightly"]')
    expect(row).to_contain_text("2100-01-01 02:00:00")
    row.get_by_role("button", name="Run schedule nightly now").click()
    expect(page.get_by_role("status")).to_contain_text("queued")
    with server.client() as c:
        job_id = c.schedule("nightly")["last_job_id"]
    assert server.wait_job(job_id)["state"] == "succeeded"
    assert (dst / "nightly" / "a.txt").read_text() == "a\n"
    page.locator('tr[data-schedule="nightly"]').get_by_role("button", name="Pause").click()
    expect(page.locator('tr[data-schedule="nightly"] [data-field="next"]')).to_have_text("paused")
