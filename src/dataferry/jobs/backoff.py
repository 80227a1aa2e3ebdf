"""Exponential backoff with full jitter: pure, the random source is injectable."""

from __future__ import annotations

import random
from collections.abc import Callable


def backoff_delay(
    attempt: int,
    base: float,
    cap: float,
    rand: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait before attempt ``attempt + 1`` (``attempt`` >= 1).

    The ceiling doubles each attempt from ``base`` up to ``cap``; the delay is
    drawn from the upper half of it, so retries spread out but never fire at once.
    """
    if attempt < 1:
        raise ValueError("attempt counts from 1")
    ceiling = min(cap, base * 2.0 ** min(attempt - 1, 62))
    return ceiling / 2 + rand() * ceiling / 2
