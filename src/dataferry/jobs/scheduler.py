"""The scheduler tick: starts due retries, takes back jobs whose worker died,
re-sends dispatch hints for jobs still queued, and runs capabilities' periodic work."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from dataferry.db.base import utcnow
from dataferry.errors import JobLost
from dataferry.jobs.executor import Executor
from dataferry.jobs.states import InvalidTransition, JobEvent, JobState
from dataferry.jobs.store import JobStore

log = logging.getLogger(__name__)


@dataclass
class Periodic:
    name: str
    fn: Callable[[], None]
    every: float
    last: float | None = None  # never run: the first tick runs it


class Scheduler:
    def __init__(
        self,
        store: JobStore,
        executor: Executor,
        tick_seconds: float,
        redispatch_seconds: float | None = None,
    ) -> None:
        self.store = store
        self.executor = executor
        self.tick_seconds = tick_seconds
        # None: hints are cheap (in-process), repeat them every tick for jobs queued
        # over 5 ticks. A number: a job still queued that long is sent again at
        # most that often (a broker message each time; duplicates are harmless).
        self.redispatch_seconds = redispatch_seconds
        self._sent: dict[int, float] = {}
        self._periodic: list[Periodic] = []
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def add_periodic(self, name: str, fn: Callable[[], None], every: float) -> None:
        """Run ``fn`` from the tick at most every ``every`` seconds."""
        self._periodic.append(Periodic(name, fn, every))

    def tick(self) -> dict[str, int]:
        """One pass; returns counts of what it did (for logs and tests)."""
        now = utcnow()
        counts = {"due": 0, "expired": 0, "redispatched": 0}
        for job_id in self.store.due_retries(now):
            try:
                job = self.store.transition(job_id, JobEvent.DUE)
            except (InvalidTransition, JobLost):
                continue  # cancelled or changed meanwhile
            counts["due"] += 1
            self.executor.dispatch(job.id, job.queue)
        for job_id in self.store.expired_leases(now):
            state = self.store.expire_lease(job_id, now)
            if state is JobState.QUEUED:
                counts["expired"] += 1
                log.warning("job %s: its worker stopped answering; re-queued", job_id)
                self.executor.dispatch(job_id, self.store.get(job_id).queue)
        # A hint may have been lost (a broker down, a process killed): repeat it.
        mono = time.monotonic()
        every = self.redispatch_seconds
        age = every if every is not None else self.tick_seconds * 5
        queued = self.store.queued_ids(now - timedelta(seconds=age))
        still = set(queued)
        self._sent = {i: t for i, t in self._sent.items() if i in still}
        # A broker queue that still holds messages will deliver them: a job waiting
        # behind a backlog has not lost its message, so do not send it again yet.
        pending = getattr(self.executor, "pending", None)
        backlog: dict[str, bool] = {}
        for job_id in queued:
            queue = self.store.get(job_id).queue
            if pending is not None:
                if queue not in backlog:
                    backlog[queue] = bool(pending(queue))
                if backlog[queue]:
                    continue
            if every is not None:
                if mono - self._sent.get(job_id, -every) < every:
                    continue
                self._sent[job_id] = mono
            counts["redispatched"] += 1
            self.executor.dispatch(job_id, queue)
        for p in self._periodic:
            if p.last is None or mono - p.last >= p.every:
                p.last = mono
                try:
                    p.fn()
                except Exception:
                    log.exception("periodic task %s failed", p.name)
        return counts

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="dataferry-scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(10)

    def _loop(self) -> None:
        while not self._stopping.wait(self.tick_seconds):
            try:
                self.tick()
            except Exception:
                log.exception("scheduler tick failed; next tick tries again")
