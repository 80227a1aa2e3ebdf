"""A per-job bandwidth limit shared by the job's copy threads.

A plain average-rate pacer (bytes so far against the time they may take) is all a
transfer needs; rate-limiter libraries count calls, not bytes, and add a bucket store."""

from __future__ import annotations

import threading
import time


class Throttle:
    def __init__(self, bytes_per_second: int) -> None:
        self.rate = bytes_per_second
        self._lock = threading.Lock()
        self._start: float | None = None  # the first block starts the clock
        self._bytes = 0

    def take(self, nbytes: int) -> None:
        """Account ``nbytes`` just moved; sleep until the average rate is within the limit."""
        if self.rate <= 0:
            return
        with self._lock:
            if self._start is None:
                self._start = time.monotonic()
            self._bytes += nbytes
            due = self._start + self._bytes / self.rate
        wait = due - time.monotonic()
        if wait > 0:
            time.sleep(wait)
