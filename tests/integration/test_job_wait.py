"""Waiting for a job to end (``GET /api/v1/jobs/{id}?wait=S``): the answer comes as
soon as the job is finished, whichever process ends it, or after S seconds."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from dataferry.errors import InvalidRequest, NotFound
from dataferry.jobs import service as job_service
from dataferry.jobs.context import JobContext
from dataferry.jobs.registry import JobKind
from dataferry.jobs.states import JobEvent, JobState
from dataferry.jobs.store import JobStore
from dataferry.jobs.waiting import JobChanges
from tests.support.jobs import wait_state
from tests.support.server import Server
from tests.support.trees import make_tree


def test_changes_wake_each_subscriber_once_and_not_after_unsubscribing() -> None:
    changes = JobChanges()
    woken: list[str] = []
    changes.subscribe(1, lambda: woken.append("a"))
    cancel_b = changes.subscribe(1, lambda: woken.append("b"))
    changes.subscribe(2, lambda: woken.append("other job"))
    cancel_b()
    changes.changed(1)
    changes.changed(1)  # subscriptions are used up by the first change
    assert woken == ["a"]
    cancel_b()  # cancelling twice is harmless
    changes.subscribe(3, lambda: woken.append("c"))
    changes.wake_all()  # a shutdown: every waiter of every job
    changes.changed(2)
    assert woken == ["a", "other job", "c"]


def _blocking_job(core: Any) -> tuple[int, threading.Event]:
    release = threading.Event()

    def hold(ctx: JobContext) -> dict[str, Any]:
        while not release.wait(0.05):
            ctx.check()
        return {"held": True}

    core.registry.register(JobKind("hold", hold))
    core.start()
    job = core.jobs.submit("hold", {})
    wait_state(core, job.id, {"running"})
    return job.id, release


def waited(core: Any, job_id: int, seconds: float) -> Any:
    """``core.jobs.wait`` run to its end on a thread of its own: the main thread of a
    test process may hold a running event loop (the browser tests' Playwright, when
    they ran in the same process first), where ``asyncio.run`` refuses to start."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, core.jobs.wait(job_id, seconds)).result()


def test_wait_returns_the_running_job_after_its_time(core: Any) -> None:
    job_id, release = _blocking_job(core)
    try:
        assert waited(core, job_id, 0.3).state is JobState.RUNNING
        assert waited(core, job_id, 0).state is JobState.RUNNING
    finally:
        release.set()


def test_a_job_ended_in_this_process_wakes_the_waiter(
    core: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No re-reads during the wait: only the store's wake-up can end it early.
    monkeypatch.setattr(job_service, "RECHECK_SECONDS", 60.0)
    job_id, release = _blocking_job(core)
    threading.Timer(0.3, release.set).start()
    start = time.monotonic()
    job = waited(core, job_id, 50)
    assert job.state is JobState.SUCCEEDED and job.result == {"held": True}
    assert time.monotonic() - start < 50  # woken, not timed out


def test_a_job_ended_by_another_process_is_seen(core: Any) -> None:
    """Another store on the same database (as a Celery worker or a second server has)
    ends the job: it sends this process no wake-up, the re-read finds it."""
    job_id, release = _blocking_job(core)
    try:
        elsewhere = JobStore(core.db)
        elsewhere.transition(job_id, JobEvent.CANCEL, lease_owner=None, lease_expires_at=None)
        start = time.monotonic()
        job = waited(core, job_id, 50)
        assert job.state is JobState.CANCELLED
        assert time.monotonic() - start < 50
    finally:
        release.set()


def test_bad_waits_are_refused(core: Any) -> None:
    job_id, release = _blocking_job(core)
    try:
        for seconds in (-1.0, 61.0, float("nan"), float("inf")):
            with pytest.raises(InvalidRequest, match="between 0 and 60"):
                waited(core, job_id, seconds)
        with pytest.raises(NotFound):
            waited(core, job_id + 1000, 1)
        assert core.jobs.get(job_id).state is JobState.RUNNING  # nothing changed
    finally:
        release.set()


def test_long_poll_over_http(server: Server, tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    make_tree(src / "t", files=30, seed=5)
    dst.mkdir()
    with server.client() as c:
        c.add_endpoint("a", str(src))
        c.add_endpoint("b", str(dst))
        job = c.transfer("a:t", "b:t")
        doc = c.job(job["job_id"], wait=50)
        assert doc["state"] == "succeeded" and doc["files_done"] == 30
        assert c.wait(job["job_id"]) == doc  # a finished job answers at once
        for bad in ("-1", "61", "nan", "soon"):
            r = httpx.get(f"{server.url}/api/v1/jobs/{job['job_id']}", params={"wait": bad})
            assert r.status_code == 422, (bad, r.text)
        r = httpx.get(f"{server.url}/api/v1/jobs/999999", params={"wait": "1"})
        assert r.status_code == 404


def test_a_server_shutting_down_answers_its_long_polls(server_factory: Any, tmp_path: Path) -> None:
    """uvicorn waits for open requests before it stops: a long poll must not hold a
    stopping server for its whole wait."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    (src / "big.bin").write_bytes(b"\0" * (20 * 1024 * 1024))
    # 1 MB/s: the job runs for about 20 s, far longer than the test waits for it.
    server = server_factory(env={"DATAFERRY_TRANSFER__BANDWIDTH_LIMIT": "1000000"})
    answers: list[Any] = []
    with server.client() as c:
        c.add_endpoint("a", str(src))
        c.add_endpoint("b", str(dst))
        job = c.transfer("a:big.bin", "b:big.bin")
        server.wait_job(job["job_id"], states=frozenset({"running"}))

        def long_poll() -> None:
            try:
                answers.append(c.job(job["job_id"], wait=50))
            except Exception as exc:  # recorded and checked below
                answers.append(exc)

        poller = threading.Thread(target=long_poll)
        poller.start()
        time.sleep(0.5)  # the request is in the server, waiting
        server.stop()  # SIGTERM, then up to 30 s for the process to end
        poller.join(5)
    assert not poller.is_alive()
    assert isinstance(answers[0], dict), answers
    assert answers[0]["state"] == "running"  # answered at the shutdown, not at the end
