"""The job operations every front door calls."""

from __future__ import annotations

import asyncio
import contextlib
import math
from datetime import timedelta
from typing import Any

import anyio.to_thread

from dataferry.config import MAX_KEEP_DAYS, JobSettings
from dataferry.db.base import utcnow
from dataferry.errors import InvalidRequest
from dataferry.jobs.executor import Executor
from dataferry.jobs.model import Job
from dataferry.jobs.registry import JobRegistry
from dataferry.jobs.states import JobEvent, JobState
from dataferry.jobs.store import JobStore

MAX_PAGE = 1000
# The longest a caller may wait for a job to end in one request.
MAX_WAIT_SECONDS = 60.0
# Finished jobs deleted per transaction when pruning (each takes its per-file rows).
PRUNE_BATCH = 200
# A waiter re-reads the job this often: a job ended by another process (a Celery
# worker, a second server) sends no wake-up to this one.
RECHECK_SECONDS = 0.25


class NoExecutor:
    """Until an executor starts (CLI tools, tests), dispatch hints are dropped:
    the job rows stay queued and any executor picks them up."""

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def dispatch(self, job_id: int, queue: str) -> None: ...


class JobService:
    def __init__(self, store: JobStore, registry: JobRegistry, settings: JobSettings) -> None:
        self.store = store
        self.registry = registry
        self.settings = settings
        self.executor: Executor = NoExecutor()
        # Set when the server shuts down: waits answer at once instead of holding it.
        self._closing = False

    def submit(self, kind: str, params: dict[str, Any]) -> Job:
        spec = self.registry.get(kind)
        job = self.store.create(
            kind,
            params,
            queue=spec.queue,
            max_attempts=spec.max_attempts or self.settings.max_attempts,
        )
        self.executor.dispatch(job.id, job.queue)
        return job

    def prune(self, older_than_days: Any) -> int:
        """Delete finished jobs of the prunable kinds (transfer, move, ala, records
        sync) that ended more than ``older_than_days`` ago; returns how many.
        Kinds whose job other records name (ingest, dataset manifest and delivery)
        are kept."""
        if (
            isinstance(older_than_days, bool)
            or not isinstance(older_than_days, (int, float))
            or not math.isfinite(older_than_days)
            or not 0 <= older_than_days <= MAX_KEEP_DAYS
        ):
            raise InvalidRequest(
                f"older_than_days must be a number of days from 0 to {MAX_KEEP_DAYS:g}, "
                f"not {str(older_than_days)[:40]!r}"
            )
        before = utcnow() - timedelta(days=older_than_days)
        kinds = self.registry.prunable()
        total = 0
        while (n := self.store.prune(before, kinds, PRUNE_BATCH)) > 0:
            total += n
        return total

    def get(self, job_id: int) -> Job:
        return self.store.get(job_id)

    async def wait(self, job_id: int, seconds: float) -> Job:
        """The job as soon as it is in a final state, or as it is after ``seconds``.
        A job ended in this process wakes the waiter at once; one ended elsewhere is
        seen within RECHECK_SECONDS."""
        if not (math.isfinite(seconds) and 0 <= seconds <= MAX_WAIT_SECONDS):
            raise InvalidRequest(f"wait must be between 0 and {MAX_WAIT_SECONDS:g} seconds")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while True:
            woken = asyncio.Event()

            def wake(woken: asyncio.Event = woken) -> None:
                with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                    loop.call_soon_threadsafe(woken.set)

            # Subscribe before reading, so a change between the two is not missed.
            unsubscribe = self.store.changes.subscribe(job_id, wake)
            try:
                # anyio's worker threads: the pool the web server's other requests use
                job = await anyio.to_thread.run_sync(self.store.get, job_id)
                left = deadline - loop.time()
                if job.state.final or left <= 0 or self._closing:
                    return job
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(woken.wait(), min(left, RECHECK_SECONDS))
            finally:
                unsubscribe()

    def stop_waiting(self) -> None:
        """Answer every wait now and every later one at once: a server shutting down
        waits for its open requests, and a long poll would hold it up to a minute."""
        self._closing = True
        self.store.changes.wake_all()

    def page(
        self,
        state: str | None = None,
        kind: str | None = None,
        limit: int = 50,
        offset: int = 0,
        before: int | None = None,
        after: int | None = None,
    ) -> tuple[list[Job], int]:
        """A page of jobs, newest first, and how many match the filters."""
        if state is not None and state not in {s.value for s in JobState}:
            allowed = ", ".join(s.value for s in JobState)
            raise InvalidRequest(f"unknown state {state!r}; one of: {allowed}")
        if kind is not None and kind not in self.registry.names():
            # a typo found nothing before, as if there were no such jobs
            allowed = ", ".join(self.registry.names())
            raise InvalidRequest(f"unknown kind {kind[:60]!r}; one of: {allowed}")
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidRequest(f"limit must be between 1 and {MAX_PAGE}")
        if offset < 0:
            raise InvalidRequest("offset must not be negative")
        if before is not None and after is not None:
            raise InvalidRequest("give before or after, not both")
        return self.store.page(
            state=state, kind=kind, limit=limit, offset=offset, before=before, after=after
        )

    def counts(self) -> dict[str, int]:
        """How many jobs are in each state (every state present, zeros included)."""
        found = self.store.counts_by_state()
        return {s.value: found.get(s.value, 0) for s in JobState}

    def cancel(self, job_id: int) -> Job:
        return self.store.transition(
            job_id, JobEvent.CANCEL, lease_owner=None, lease_expires_at=None
        )

    def retry(self, job_id: int) -> Job:
        """A user's restart of a failed or cancelled job: a fresh set of attempts."""
        job = self.store.transition(
            job_id, JobEvent.USER_RETRY, attempts=0, error="", next_run_at=None
        )
        self.executor.dispatch(job.id, job.queue)
        return job

    def attempts(self, job_id: int) -> list[dict[str, Any]]:
        self.store.get(job_id)
        return self.store.attempts(job_id)

    def files(self, job_id: int, limit: int = 1000, offset: int = 0) -> list[dict[str, Any]]:
        self.store.get(job_id)
        return self.store.files(job_id, limit=limit, offset=offset)
