"""Thread-pool executor inside ``dataferry serve``: N threads claim jobs from the database."""

from __future__ import annotations

import logging
import threading
import time

from dataferry.jobs.executor import claim_owner
from dataferry.jobs.runner import JobRunner
from dataferry.jobs.store import JobStore

log = logging.getLogger(__name__)

# Threads poll this often when no dispatch hint arrives (another process may enqueue).
POLL_SECONDS = 1.0


class InlineExecutor:
    def __init__(
        self,
        store: JobStore,
        runner: JobRunner,
        node: str,
        workers: int,
        lease_seconds: float,
    ) -> None:
        self.store = store
        self.runner = runner
        self.node = node
        self.workers = workers
        self.lease_seconds = lease_seconds
        self._wake = threading.Condition()
        self._hints = 0
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        self.runner.stopping.clear()  # a core started again after a stop
        for i in range(self.workers):
            t = threading.Thread(target=self._loop, name=f"dataferry-worker-{i}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop claiming; running jobs end at their next check and are handed back to
        the queue (JobRunner.stopping). Waits up to ``timeout`` seconds in all."""
        self._stopping.set()
        self.runner.stopping.set()
        with self._wake:
            self._wake.notify_all()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        self._threads.clear()

    def dispatch(self, job_id: int, queue: str) -> None:
        with self._wake:
            self._hints += 1
            self._wake.notify()

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                owner = claim_owner(self.node)
                job = self.store.claim_next(owner, self.lease_seconds)
            except Exception:
                log.exception("claiming a job failed; retrying shortly")
                self._stopping.wait(POLL_SECONDS)
                continue
            if job is None:
                with self._wake:
                    if self._hints == 0:
                        self._wake.wait(POLL_SECONDS)
                    self._hints = max(0, self._hints - 1)
                continue
            self.runner.run(job, owner)
