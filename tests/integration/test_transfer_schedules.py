"""Schedules (Globus Timers; rclone under cron): a transfer submitted again every so
often by the scheduler tick of a real server. Runs fall on ``start + k * every``;
missed runs make one run; a run is skipped, counted and explained when the previous
run's job is still going or the transfer no longer checks out; two servers on one
database make each run once. Time is moved on by writing ``next_run`` into the
database, as a day passing would leave it."""

from __future__ import annotations

import html
import time
import xmlrpc.client
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from dataferry.db.engine import Database
from dataferry.db.models import ScheduleRow
from tests.support.browser import Browser, csrf_of
from tests.support.server import Server

FAST = {"DATAFERRY_JOBS__TICK_SECONDS": "0.2"}
DAY = 86400.0


def api(server: Server) -> httpx.Client:
    return httpx.Client(base_url=f"{server.url}/api/v1", timeout=30)


def wait_for(check: Any, what: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return value


def make_due(database_url: str, name: str) -> None:
    """Move the schedule's next run into the past (as time passing would)."""
    db = Database(database_url)
    try:
        with db.session() as s:
            s.execute(
                update(ScheduleRow)
                .where(ScheduleRow.name == name)
                .values(next_run=datetime.now(UTC) - timedelta(seconds=1))
            )
    finally:
        db.dispose()


def schedule(server: Server, name: str) -> dict[str, Any]:
    doc: dict[str, Any] = server.cli_json("schedule", "show", name)
    return doc


def transfer_jobs(server: Server) -> list[dict[str, Any]]:
    jobs: list[dict[str, Any]] = server.cli_json("jobs", "--kind", "transfer")
    return jobs


@pytest.fixture
def lab(tmp_path: Path) -> tuple[Path, Path]:
    src, dst = tmp_path / "lab", tmp_path / "archive"
    (src / "run1" / "raw").mkdir(parents=True)
    (src / "run1" / "raw" / "counts.txt").write_text("1\n2\n")
    dst.mkdir()
    return src, dst


@pytest.fixture
def running(server_factory: Any, lab: tuple[Path, Path]) -> Server:
    srv: Server = server_factory(env=FAST)
    srv.cli("endpoint", "add", "lab", str(lab[0]))
    srv.cli("endpoint", "add", "archive", str(lab[1]))
    return srv


@pytest.mark.executors
def test_missed_runs_make_one_run_and_the_next_falls_on_the_grid(
    running: Server, lab: tuple[Path, Path]
) -> None:
    _, dst = lab
    start = datetime.now(UTC) - timedelta(days=3, hours=12)  # 4 runs missed
    said = running.cli(
        "schedule", "add", "nightly", "lab:run1", "archive:run1", "--every", "1d",
        "--mode", "sync", "--start", start.isoformat(),
    ).stdout  # fmt: skip
    assert "schedule nightly: first run at" in said
    doc = wait_for(lambda: (d := schedule(running, "nightly"))["runs"] and d, "the first run")
    assert doc["runs"] == 1 and doc["skipped"] == 0 and doc["last_error"] == ""
    next_run = datetime.fromisoformat(doc["next_run"])
    assert next_run == start + timedelta(days=4)
    job = running.wait_job(doc["last_job_id"])
    assert job["state"] == "succeeded"
    assert (dst / "run1" / "raw" / "counts.txt").read_text() == "1\n2\n"
    with running.client() as c:
        detail = c.job_detail(doc["last_job_id"])
    assert detail["params"]["schedule"] == "nightly" and detail["params"]["mode"] == "sync"
    time.sleep(1)  # several ticks: nothing more is due
    assert len(transfer_jobs(running)) == 1
    # a day later: one more run, of a sync that finds nothing new
    make_due(running.env["DATAFERRY_DATABASE_URL"], "nightly")
    doc = wait_for(lambda: (d := schedule(running, "nightly"))["runs"] == 2 and d, "run 2")
    assert running.wait_job(doc["last_job_id"])["state"] == "succeeded"
    assert len(transfer_jobs(running)) == 2


def test_a_run_is_skipped_while_the_previous_job_is_still_going(
    server_factory: Any, lab: tuple[Path, Path]
) -> None:
    # no job runs on this server: each job it is given stays queued
    srv: Server = server_factory(env={**FAST, "DATAFERRY_JOBS__WORKERS": "0"})
    srv.cli("endpoint", "add", "lab", str(lab[0]))
    srv.cli("endpoint", "add", "archive", str(lab[1]))
    srv.cli("schedule", "add", "hourly", "lab:run1", "archive:run1", "--every", "1h")
    first = wait_for(lambda: schedule(srv, "hourly")["last_job_id"], "the first run")
    make_due(srv.env["DATAFERRY_DATABASE_URL"], "hourly")
    doc = wait_for(lambda: (d := schedule(srv, "hourly"))["skipped"] and d, "a skipped run")
    assert doc["runs"] == 1 and doc["last_job_id"] == first
    assert f"job {first} of the previous run was still queued" in doc["last_error"]
    assert datetime.fromisoformat(doc["next_run"]) > datetime.now(UTC)
    shown = srv.cli("schedule", "show", "hourly").stdout
    assert "skipped 1" in shown and "was still queued" in shown
    refused = srv.cli("schedule", "run", "hourly", check=False)
    assert refused.returncode != 0
    assert f"job {first} of its previous run is still queued" in refused.stderr
    assert [j["job_id"] for j in transfer_jobs(srv)] == [first]
    # once that job is cancelled, a run can be made at once
    srv.cli("cancel", str(first))
    made = srv.cli("schedule", "run", "hourly").stdout
    assert made.startswith("job ") and int(made.split()[1]) != first


def test_a_run_whose_transfer_no_longer_checks_out_is_skipped_and_said(
    running: Server, lab: tuple[Path, Path]
) -> None:
    src, _ = lab
    running.cli("schedule", "add", "daily", "lab:run1", "archive:run1", "--every", "1d")
    wait_for(lambda: schedule(running, "daily")["runs"], "the first run")
    (src / "run1" / "raw" / "counts.txt").unlink()
    (src / "run1" / "raw").rmdir()
    (src / "run1").rmdir()
    make_due(running.env["DATAFERRY_DATABASE_URL"], "daily")
    doc = wait_for(lambda: (d := schedule(running, "daily"))["skipped"] and d, "a skip")
    assert "source path 'run1' does not exist on endpoint 'lab'" in doc["last_error"]
    assert doc["runs"] == 1 and len(transfer_jobs(running)) == 1
    # the source is back: the next run is made and clears the error
    (src / "run1").mkdir()
    make_due(running.env["DATAFERRY_DATABASE_URL"], "daily")
    doc = wait_for(lambda: (d := schedule(running, "daily"))["runs"] == 2 and d, "run 2")
    assert doc["last_error"] == "" and doc["skipped"] == 1


def test_pause_stops_runs_and_resume_starts_from_the_next_slot(
    running: Server, lab: tuple[Path, Path]
) -> None:
    start = datetime.now(UTC) + timedelta(hours=1)
    running.cli(
        "schedule", "add", "later", "lab:run1", "archive:run1", "--every", "1d",
        "--start", start.isoformat(),
    )  # fmt: skip
    assert schedule(running, "later")["next_run"] == start.isoformat()
    paused = running.cli_json("schedule", "pause", "later")
    assert paused["paused"] is True and paused["next_run"] is None
    make_due(running.env["DATAFERRY_DATABASE_URL"], "later")
    time.sleep(1.5)  # several ticks
    assert schedule(running, "later")["runs"] == 0 and transfer_jobs(running) == []
    resumed = running.cli_json("schedule", "resume", "later")
    assert resumed["paused"] is False
    assert datetime.fromisoformat(resumed["next_run"]) == start  # still to come: not made up
    listed = running.cli("schedule", "list").stdout
    assert "later" in listed and "lab:run1" in listed
    running.cli("schedule", "remove", "later")
    assert running.cli_json("schedule", "list") == []


BODY = {"name": "n1", "every": 3600, "transfer": {"source": "lab:run1", "destination": "archive:x"}}


@pytest.mark.parametrize(
    ("change", "status", "said"),
    [
        ({"every": True}, 422, "every must be a number of seconds from 60"),
        ({"every": "3600"}, 422, "every must be a number of seconds"),
        ({"every": 59}, 422, "every must be a number of seconds from 60"),
        ({"every": 10**12}, 422, "every must be a number of seconds"),
        ({"every": None}, 422, "every must be a number of seconds"),
        ({"start": "tomorrow"}, 422, "is not an ISO 8601 time"),
        ({"start": "2026-12-09T02:00:00"}, 422, "has no time zone"),
        ({"start": 1796700000}, 422, "start must be an ISO 8601 time as text"),
        ({"name": "a b"}, 422, "schedule name 'a b' must be"),
        ({"name": ""}, 422, "schedule name '' must be"),
        ({"transfer": {"source": "nowhere:x", "destination": "archive:x"}}, 404, "nowhere"),
        ({"transfer": {"source": "lab:gone", "destination": "archive:x"}}, 404, "gone"),
        ({"transfer": {"source": "lab:run1", "destination": "archive:x", "mode": "teleport"}},
         422, "mode"),
        ({"extra": 1}, 422, "extra"),
    ],
)  # fmt: skip
def test_bad_schedules_are_refused_and_nothing_is_made(
    running: Server, change: dict[str, Any], status: int, said: str
) -> None:
    with api(running) as c:
        r = c.post("/schedules", json={**BODY, **change})
        assert r.status_code == status, r.text
        assert said in r.text, r.text
        assert c.get("/schedules").json() == {"schedules": []}
    assert transfer_jobs(running) == []


def test_rest_answers_and_names_a_missing_schedule(running: Server) -> None:
    with api(running) as c:
        r = c.post("/schedules", json={**BODY, "start": "2030-01-01T00:00:00+01:00"})
        assert r.status_code == 201, r.text
        doc = r.json()
        assert doc["start"] == "2029-12-31T23:00:00+00:00" == doc["next_run"]
        assert doc["transfer"]["source"] == "lab:run1" and doc["every"] == 3600
        assert c.post("/schedules", json=BODY).status_code == 409
        assert c.get("/schedules/n1").json() == doc
        for method, path in (
            ("GET", "/schedules/nope"),
            ("DELETE", "/schedules/nope"),
            ("POST", "/schedules/nope/pause"),
            ("POST", "/schedules/nope/resume"),
            ("POST", "/schedules/nope/run"),
        ):
            r = c.request(method, path)
            assert r.status_code == 404 and "schedule 'nope' does not exist" in r.text
        job = c.post("/schedules/n1/run")
        assert job.status_code == 202 and job.json()["kind"] == "transfer"
        assert c.get("/schedules/n1").json()["last_job_id"] == job.json()["job_id"]
        assert c.delete("/schedules/n1").status_code == 204
        assert c.get(f"/jobs/{job.json()['job_id']}").status_code == 200  # the job stays


def test_two_servers_on_one_database_make_each_run_once(
    server_factory: Any, lab: tuple[Path, Path]
) -> None:
    a: Server = server_factory("a", env=FAST)
    b: Server = server_factory("b", env=FAST)
    a.cli("endpoint", "add", "lab", str(lab[0]))
    a.cli("endpoint", "add", "archive", str(lab[1]))
    for i in range(5):
        a.cli("schedule", "add", f"s{i}", "lab:run1", f"archive:copy{i}", "--every", "1d")
    wait_for(lambda: all(s["runs"] for s in a.cli_json("schedule", "list")), "a run of each")
    for i in range(5):
        make_due(a.env["DATAFERRY_DATABASE_URL"], f"s{i}")
    wait_for(lambda: all(s["runs"] == 2 for s in b.cli_json("schedule", "list")), "run 2 of each")
    time.sleep(1)  # both servers tick several times more
    jobs = transfer_jobs(a)
    assert len(jobs) == 10, jobs
    for s in a.cli_json("schedule", "list"):
        assert s["runs"] == 2 and s["skipped"] == 0, s


def test_the_dashboard_adds_runs_pauses_and_removes_schedules(
    running: Server, lab: tuple[Path, Path]
) -> None:
    form = {
        "source_endpoint": "lab",
        "source_path": "run1",
        "destination_endpoint": "archive",
        "destination_path": "run1",
        "mode": "sync",
        "checksum": "sha256",
        "start": "2100-01-01T02:00:00Z",  # no run of its own while the test runs
    }
    # each action answers 303 to the schedules page, fetched in the same session
    with Browser(running.url, follow_redirects=True) as b:
        token = csrf_of(b.get("/transfers/new").text)
        # bad repeat values come back on the form, and nothing is made
        for bad, said in (
            ({"schedule_name": "n", "every": "often"}, "is not a duration"),
            ({"schedule_name": "n", "every": "30s"}, "every must be a number of seconds"),
            ({"schedule_name": "a b", "every": "1d"}, "schedule name 'a b' must be"),
            ({"schedule_name": "n", "every": ""}, "give how often to repeat"),
            ({"schedule_name": "n", "every": "1d", "start": "soon"}, "not an ISO 8601 time"),
        ):
            r = b.post("/transfers/new", data={**form, **bad, "csrf": token, "action": "schedule"})
            assert r.status_code == 422 and said in html.unescape(r.text), (bad, r.text[-500:])
        # "Start transfer" with Repeat filled in is not silently a one-off job
        r = b.post(
            "/transfers/new", data={**form, "schedule_name": "n", "every": "1d", "csrf": token}
        )
        assert r.status_code == 422 and "press Add schedule" in r.text
        assert running.cli_json("schedule", "list") == [] and transfer_jobs(running) == []

        r = b.post(
            "/transfers/new",
            data={**form, "schedule_name": "nightly", "every": "1d", "csrf": token,
                  "action": "schedule"},
        )  # fmt: skip
        assert r.status_code == 200 and r.url.path == "/schedules", r.text[-500:]
        assert "schedule nightly added: first run at 2100-01-01 02:00:00 UTC" in r.text
        assert 'data-schedule="nightly"' in r.text and "1 d 0 h" in r.text
        doc = schedule(running, "nightly")
        assert doc["every"] == DAY and doc["transfer"]["mode"] == "sync"

        r = b.post("/schedules/nightly/run", data={"csrf": token})
        job_id = schedule(running, "nightly")["last_job_id"]
        assert f"schedule nightly: job {job_id} queued" in html.unescape(r.text), r.text[-2000:]
        assert running.wait_job(job_id)["state"] == "succeeded"
        r = b.post("/schedules/nightly/pause", data={"csrf": token})
        assert "schedule nightly paused" in r.text and 'state-paused">paused' in r.text
        assert b.post("/schedules/nightly/pause", data={}).status_code == 403  # no CSRF token
        r = b.post("/schedules/nightly/resume", data={"csrf": token})
        assert "schedule nightly resumed" in r.text and "2100-01-01 02:00:00" in r.text
        r = b.post("/schedules/nope/run", data={"csrf": token})
        assert "schedule 'nope' does not exist" in html.unescape(r.text)
        r = b.post("/schedules/nightly/remove", data={"csrf": token})
        assert "schedule nightly removed" in r.text and "No schedules." in r.text


def test_the_rpc_doors_add_run_and_remove_schedules(running: Server) -> None:
    proxy: Any = xmlrpc.client.ServerProxy(f"{running.url}/data_mover", allow_none=True)
    transfer = {"source": "lab:run1", "destination": "archive:rpc", "mode": "sync"}
    doc = proxy.schedules.add("rpc1", 3600, transfer, "2100-01-01T00:00:00Z")
    assert doc["every"] == 3600 and doc["transfer"]["mode"] == "sync"
    assert [s["name"] for s in proxy.schedules.list()] == ["rpc1"]
    job = proxy.schedules.run("rpc1")
    assert running.wait_job(job["job_id"])["state"] == "succeeded"
    assert proxy.schedules.pause("rpc1")["paused"] is True
    assert proxy.schedules.resume("rpc1")["next_run"] == "2100-01-01T00:00:00+00:00"
    call = {"jsonrpc": "2.0", "id": 1}
    got = httpx.post(
        f"{running.url}/jsonrpc", json={**call, "method": "schedules.get", "params": ["rpc1"]}
    ).json()
    assert got["result"]["runs"] == 1 and got["result"]["last_job_id"] == job["job_id"]
    for bad, said in (
        (["r2", 3600, "lab:run1"], "transfer must be an object of its fields"),
        (["r2", 3600, {**transfer, "speed": "max"}], "unknown field(s) ['speed']"),
        (["r2", 3600, {**transfer, "source": 7}], "transfer source must be ENDPOINT:PATH"),
        (["r2", 3600, {**transfer, "min_size": True}], "min_size"),
        (["r2", True, transfer], "every must be a number of seconds"),
        (["r2", 3600, transfer, "noon"], "is not an ISO 8601 time"),
    ):
        error = httpx.post(
            f"{running.url}/jsonrpc", json={**call, "method": "schedules.add", "params": bad}
        ).json()["error"]
        assert said in error["message"], (bad, error)
        with pytest.raises(xmlrpc.client.Fault) as fault:
            proxy.schedules.add(*bad)
        assert said in fault.value.faultString, bad
    assert [s["name"] for s in proxy.schedules.list()] == ["rpc1"]
    assert proxy.schedules.remove("rpc1") is True
    with pytest.raises(xmlrpc.client.Fault) as fault:
        proxy.schedules.get("rpc1")
    assert "schedule 'rpc1' does not exist" in fault.value.faultString
