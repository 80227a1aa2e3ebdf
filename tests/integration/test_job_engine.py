"""The job engine on a real database: claims, leases, retries, cancel, user retry."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import pytest

from dataferry.db.base import utcnow
from dataferry.errors import Conflict, NotFound, PermanentError, TransientError
from dataferry.jobs.context import JobContext
from dataferry.jobs.registry import JobKind
from dataferry.jobs.states import JobState
from tests.support.jobs import wait_state

# Runs again with Celery workers and a real broker (make test-celery).
pytestmark = pytest.mark.executors


def test_claim_is_atomic_across_threads(core: Any) -> None:
    core.registry.register(JobKind("noop", lambda ctx: None))
    ids = [core.jobs.submit("noop", {"n": i}).id for i in range(40)]
    claimed: list[int] = []
    lock = threading.Lock()

    def grab() -> None:
        while True:
            job = core.job_store.claim_next("t", 30)
            if job is None:
                return
            with lock:
                claimed.append(job.id)

    threads = [threading.Thread(target=grab) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == sorted(ids)  # each exactly once


def test_success_records_result_and_attempt_history(core: Any) -> None:
    def handler(ctx: JobContext) -> dict[str, Any]:
        ctx.progress(task="working", task_percent=50.0, force=True)
        return {"echo": ctx.params["x"]}

    core.registry.register(JobKind("echo", handler))
    core.start()
    job = core.jobs.submit("echo", {"x": 42})
    done = wait_state(core, job.id, {"succeeded"})
    assert done.result == {"echo": 42}
    assert done.attempts == 1
    history = core.jobs.attempts(job.id)
    assert [(h["attempt"], h["outcome"]) for h in history] == [(1, "succeeded")]


def test_transient_errors_retry_with_backoff_then_fail(core: Any) -> None:
    calls: list[float] = []

    def flaky(ctx: JobContext) -> None:
        calls.append(time.monotonic())
        raise TransientError("remote busy")

    core.registry.register(JobKind("flaky", flaky, max_attempts=3))
    core.start()
    job = core.jobs.submit("flaky", {})
    done = wait_state(core, job.id, {"failed"})
    assert len(calls) == 3
    assert done.attempts == 3
    assert "remote busy" in done.error and "gave up after 3 attempts" in done.error
    outcomes = [h["outcome"] for h in core.jobs.attempts(job.id)]
    assert outcomes == ["retrying", "retrying", "failed"]


def test_transient_then_success(core: Any) -> None:
    calls: list[int] = []

    def second_time_lucky(ctx: JobContext) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise TransientError("timeout")

    core.registry.register(JobKind("lucky", second_time_lucky))
    core.start()
    job = core.jobs.submit("lucky", {})
    done = wait_state(core, job.id, {"succeeded"})
    assert done.attempts == 2 and done.error == ""


def test_permanent_error_fails_at_once_and_user_retry_restarts(core: Any) -> None:
    state = {"ok": False}

    def picky(ctx: JobContext) -> None:
        if not state["ok"]:
            raise PermanentError("bad credentials for endpoint x")

    core.registry.register(JobKind("picky", picky))
    core.start()
    job = core.jobs.submit("picky", {})
    failed = wait_state(core, job.id, {"failed"})
    assert failed.attempts == 1 and "bad credentials" in failed.error
    state["ok"] = True
    again = core.jobs.retry(job.id)
    assert again.state is JobState.QUEUED and again.attempts == 0 and again.error == ""
    wait_state(core, job.id, {"succeeded"})
    with pytest.raises(Conflict, match="succeeded"):
        core.jobs.retry(job.id)
    with pytest.raises(Conflict):
        core.jobs.cancel(job.id)


def test_unexpected_exception_fails_with_its_type(core: Any) -> None:
    def broken(ctx: JobContext) -> None:
        raise KeyError("oops")

    core.registry.register(JobKind("broken", broken))
    core.start()
    job = core.jobs.submit("broken", {})
    assert "KeyError" in wait_state(core, job.id, {"failed"}).error


def test_cancel_running_job_stops_the_handler(core: Any) -> None:
    stopped = threading.Event()

    def long(ctx: JobContext) -> None:
        try:
            for _ in range(600):
                ctx.progress(task="spinning", force=True)
                time.sleep(0.05)
        finally:
            stopped.set()

    core.registry.register(JobKind("long", long))
    core.start()
    job = core.jobs.submit("long", {})
    wait_state(core, job.id, {"running"})
    cancelled = core.jobs.cancel(job.id)
    assert cancelled.state is JobState.CANCELLED
    assert stopped.wait(10)
    assert core.jobs.get(job.id).state is JobState.CANCELLED
    assert core.jobs.attempts(job.id)[-1]["outcome"] == "cancelled"


def test_cancel_queued_and_unknown(core: Any) -> None:
    core.registry.register(JobKind("noop", lambda ctx: None))
    job = core.jobs.submit("noop", {})
    assert core.jobs.cancel(job.id).state is JobState.CANCELLED
    with pytest.raises(NotFound):
        core.jobs.cancel(999_999)
    with pytest.raises(NotFound):
        core.jobs.retry(999_999)


def test_expired_lease_is_requeued_and_a_stale_worker_cannot_finish(core: Any) -> None:
    core.registry.register(JobKind("noop", lambda ctx: None))
    job = core.jobs.submit("noop", {})
    claimed = core.job_store.claim_next("dead-worker", lease_seconds=0.01)
    assert claimed is not None and claimed.id == job.id
    time.sleep(0.05)
    counts = core.scheduler.tick()
    assert counts["expired"] == 1
    assert core.jobs.get(job.id).state is JobState.QUEUED
    # the dead worker wakes up: it no longer owns the job
    from dataferry.jobs.states import JobEvent

    assert not core.job_store.finish(job.id, "dead-worker", JobEvent.SUCCEED)
    core.start()
    assert wait_state(core, job.id, {"succeeded"}).attempts == 2


def test_expired_lease_out_of_attempts_fails(core: Any) -> None:
    core.registry.register(JobKind("noop", lambda ctx: None, max_attempts=1))
    job = core.jobs.submit("noop", {})
    core.job_store.claim_next("dead", lease_seconds=0.01)
    time.sleep(0.05)
    core.scheduler.tick()
    failed = core.jobs.get(job.id)
    assert failed.state is JobState.FAILED and "stopped answering" in failed.error


def test_due_retry_is_started_by_the_tick(core: Any) -> None:
    from dataferry.jobs.states import JobEvent

    core.registry.register(JobKind("noop", lambda ctx: None))
    job = core.jobs.submit("noop", {})
    core.job_store.claim_next("w", 30)
    core.job_store.finish(
        job.id, "w", JobEvent.RETRY_LATER, error="x", next_run_at=utcnow() + timedelta(seconds=60)
    )
    assert core.scheduler.tick()["due"] == 0
    with core.db.session() as s:
        from dataferry.db.models import JobRow

        row = s.get(JobRow, job.id)
        row.next_run_at = utcnow() - timedelta(seconds=1)
    assert core.scheduler.tick()["due"] == 1
    assert core.jobs.get(job.id).state is JobState.QUEUED


def test_periodic_task_runs_on_the_first_tick_then_waits_its_interval(core: Any) -> None:
    # Not "once the monotonic clock passes the interval": on a machine up for less
    # than an hour an hourly task (mDNS discovery) would otherwise never start.
    runs: list[int] = []
    core.scheduler.add_periodic("count", lambda: runs.append(1), every=3600.0)
    core.scheduler.tick()
    assert runs == [1]
    core.scheduler.tick()
    assert runs == [1]


def test_listing_filters_and_validation(core: Any) -> None:
    from dataferry.errors import InvalidRequest

    core.registry.register(JobKind("a", lambda ctx: None))
    core.registry.register(JobKind("b", lambda ctx: None))
    for _ in range(3):
        core.jobs.submit("a", {})
    core.jobs.submit("b", {})
    jobs, total = core.jobs.page(kind="a")
    assert total == 3 and {j.kind for j in jobs} == {"a"}
    jobs, total = core.jobs.page(limit=2, offset=1)
    assert total == 4 and len(jobs) == 2
    with pytest.raises(InvalidRequest, match="unknown state"):
        core.jobs.page(state="sleeping")
    with pytest.raises(InvalidRequest, match="unknown kind 'c'; one of: "):
        core.jobs.page(kind="c")
    with pytest.raises(InvalidRequest, match="limit"):
        core.jobs.page(limit=0)
    with pytest.raises(InvalidRequest, match="unknown job kind"):
        core.jobs.submit("nope", {})
