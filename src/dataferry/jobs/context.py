"""What a running handler sees: its job, throttled progress, and the lease heartbeat."""

from __future__ import annotations

import threading
import time
from typing import Any

from dataferry.errors import JobInterrupted, JobLost
from dataferry.jobs.model import Job
from dataferry.jobs.store import JobStore


class JobContext:
    """Handed to a job handler. ``progress()`` is cheap to call often: it stores at
    most once per ``progress_interval`` seconds. A heartbeat thread renews the lease
    while the handler works; if the job is cancelled or taken over, the next
    ``progress()`` or ``check()`` raises :class:`JobLost` so the handler stops."""

    def __init__(
        self,
        job: Job,
        store: JobStore,
        owner: str,
        lease_seconds: float,
        progress_interval: float,
        stopping: threading.Event | None = None,
    ) -> None:
        self.job = job
        self._stopping = stopping
        self.store = store
        self.owner = owner
        self._lease = lease_seconds
        self._interval = progress_interval
        self._lock = threading.Lock()
        self._pending: dict[str, Any] = {}
        self._last_flush = 0.0
        self._lost = threading.Event()
        self._stop = threading.Event()
        self._beat = threading.Thread(
            target=self._heartbeat, name=f"heartbeat-{job.id}", daemon=True
        )

    @property
    def job_id(self) -> int:
        return self.job.id

    @property
    def params(self) -> dict[str, Any]:
        return self.job.params

    def __enter__(self) -> JobContext:
        self._beat.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._beat.join()

    def check(self) -> None:
        """Raise :class:`JobLost` if this run should stop (cancelled or taken over), or
        :class:`JobInterrupted` if this process is stopping."""
        if self._lost.is_set():
            raise JobLost(f"job {self.job.id} is no longer ours")
        if self._stopping is not None and self._stopping.is_set():
            raise JobInterrupted(f"job {self.job.id}: this process is stopping")

    def progress(self, *, force: bool = False, **fields: Any) -> None:
        """Record progress (task, task_percent, bytes_done, ...); stored when due."""
        self.check()
        with self._lock:
            self._pending.update(fields)
            due = force or time.monotonic() - self._last_flush >= self._interval
        if due:
            self.flush()

    def pending(self) -> dict[str, Any]:
        """Progress not yet stored; the runner stores it with the final state."""
        with self._lock:
            out, self._pending = self._pending, {}
            return out

    def flush(self) -> None:
        with self._lock:
            fields, self._pending = self._pending, {}
            self._last_flush = time.monotonic()
        try:
            self.store.heartbeat(self.job.id, self.owner, self._lease, **fields)
        except JobLost:
            self._lost.set()
            raise

    def _heartbeat(self) -> None:
        period = max(0.2, self._lease / 3)
        while not self._stop.wait(period):
            try:
                self.flush()
            except JobLost:
                return
            except Exception:  # a passing DB error: the next beat tries again
                continue
