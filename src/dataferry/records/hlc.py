"""Hybrid logical clock in one integer: ``wall milliseconds * 1000 + logical counter``.

A stamp is an integer that never decreases on one instance, stays close to the
wall clock (so it can be shown as a time and compared across instances), and
orders causally related changes: receiving a peer's stamp moves the clock past
it. The integer stays below 2**53, so JavaScript clients read it exactly.

``tick`` and ``receive`` are pure functions of the previous value and the wall
clock; the caller persists the value (the record store keeps it in the
``record_clock`` row, updated in the same transaction as the change).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from dataferry.errors import InvalidRequest

SCALE = 1000  # logical steps per millisecond


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


def tick(last: int, now_ms: int, n: int = 1) -> int:
    """The first of ``n`` new stamps after ``last``: ``max(last + 1, now_ms * SCALE)``.

    The caller uses ``first .. first + n - 1``; the new clock value is ``first + n - 1``.
    """
    if n < 1:
        raise ValueError("n must be at least 1")
    return max(last + 1, now_ms * SCALE)


def physical_ms(stamp: int) -> int:
    return stamp // SCALE


def check_drift(stamp: int, now_ms: int, max_drift_ms: int) -> None:
    """Reject a peer's stamp further in the future than the allowed drift.

    Accepting it would drag this clock (and every later local change) ahead
    with it; so the whole batch is refused with a clear error instead."""
    ahead = physical_ms(stamp) - now_ms
    if ahead > max_drift_ms:
        raise InvalidRequest(
            f"change stamped {ahead / 1000:.1f} s in the future "
            f"(stamp {stamp}, allowed drift {max_drift_ms / 1000:.1f} s): "
            "the sender's clock is wrong; nothing was applied"
        )


def receive(last: int, stamps_max: int) -> int:
    """The clock after seeing a peer's stamps (already drift-checked)."""
    return max(last, stamps_max)


def to_datetime(stamp: int) -> datetime:
    return datetime.fromtimestamp(physical_ms(stamp) / 1000, UTC)


def from_datetime(moment: datetime) -> int:
    """The smallest stamp at or after ``moment`` (for --since/--until filters)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000) * SCALE
