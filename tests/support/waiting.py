"""Polling a condition in tests, with a deadline."""

from __future__ import annotations

import time
from typing import Any


def wait_for(predicate: Any, timeout: float = 60, every: float = 0.05) -> Any:
    """The first truthy value of ``predicate()``, polled every ``every`` seconds;
    AssertionError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("condition not met in time")
