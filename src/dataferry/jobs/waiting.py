"""Waiting for a job to end without polling it: the store tells this process's
waiters the moment it commits a job's change of state; a job ended by another
process (a Celery worker, a second server) is seen at the next re-read."""

from __future__ import annotations

import threading
from collections.abc import Callable

Wake = Callable[[], None]


class JobChanges:
    """Who waits for which job, in this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: dict[int, list[Wake]] = {}

    def subscribe(self, job_id: int, wake: Wake) -> Callable[[], None]:
        """Call ``wake`` (from the committing thread) at the job's next change;
        returns the function that cancels the subscription."""
        with self._lock:
            self._waiters.setdefault(job_id, []).append(wake)

        def cancel() -> None:
            with self._lock:
                waiting = self._waiters.get(job_id)
                if waiting is not None and wake in waiting:
                    waiting.remove(wake)
                    if not waiting:
                        del self._waiters[job_id]

        return cancel

    def changed(self, job_id: int) -> None:
        with self._lock:
            waiting = self._waiters.pop(job_id, [])
        for wake in waiting:
            wake()

    def wake_all(self) -> None:
        """Wake every waiter of every job (the server is shutting down)."""
        with self._lock:
            waiting = [wake for wakes in self._waiters.values() for wake in wakes]
            self._waiters.clear()
        for wake in waiting:
            wake()
