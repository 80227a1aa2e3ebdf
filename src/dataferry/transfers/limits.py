"""Which files of a folder source a transfer takes by size and age (rclone's
``--min-size``/``--max-size``/``--min-age``/``--max-age``).

A file is taken when ``min_size <= size <= max_size`` and its modification time lies
between ``max_age`` ago and ``min_age`` ago, measured from a reference moment: the
moment the job first plans (stored with the job, so a re-plan and the mirror's and
check's listings of the destination use the same one), or the moment of a dry run.
A file whose time is unknown is not taken by an age limit: nothing says it is young
or old enough.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import Strict

from dataferry.errors import InvalidRequest
from dataferry.text import cut

MAX_SIZE = 2**63 - 1  # what a signed 64-bit column holds
MAX_AGE_SECONDS = 100 * 365.25 * 24 * 3600.0

# The types the front doors declare: a bool, a float for a size or text for either is
# refused there, never read as a number (pydantic's lax mode reads True as 1).
Bytes = Annotated[int, Strict()]
Seconds = Annotated[float, Strict()]

_SIZE_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4, "P": 1024**5}
_SIZE = re.compile(r"(\d+)([KMGTP]?)", re.IGNORECASE)


def parse_size(field: str, text: str) -> int:
    """``"10M"`` -> 10485760: digits, then optionally K, M, G, T or P (1024-based, as
    rclone reads them; either case); plain digits are bytes."""
    match = _SIZE.fullmatch(text.strip())
    if not match:
        raise InvalidRequest(
            f"{field} {cut(text)!r} is not a size: digits, then optionally K, M, G, T or P "
            "(1024-based), e.g. 10M"
        )
    return check_size(field, int(match[1]) * _SIZE_UNITS[match[2].upper()])


def check_size(field: str, value: Any) -> int:
    """A size in bytes: a whole number 0..2**63-1 (not a bool, not a float)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest(f"{field} must be a whole number of bytes, not {cut(repr(value))}")
    if not 0 <= value <= MAX_SIZE:
        raise InvalidRequest(f"{field} must be between 0 and {MAX_SIZE} bytes, not {value}")
    return value


def check_age(field: str, value: Any) -> float:
    """An age in seconds: a number > 0, finite, at most 100 years (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidRequest(f"{field} must be a number of seconds, not {cut(repr(value))}")
    if not math.isfinite(value) or not 0 < value <= MAX_AGE_SECONDS:
        raise InvalidRequest(
            f"{field} must be more than 0 and at most {MAX_AGE_SECONDS:.0f} seconds "
            f"(100 years), not {value}"
        )
    return float(value)


@dataclass(frozen=True, slots=True)
class Limits:
    min_size: int | None = None
    max_size: int | None = None
    min_age: float | None = None  # seconds: only files older than this
    max_age: float | None = None  # seconds: only files modified within this

    @classmethod
    def build(cls, min_size: Any, max_size: Any, min_age: Any, max_age: Any) -> Limits:
        """Checked limits; InvalidRequest naming the field that is wrong."""
        limits = cls(
            None if min_size is None else check_size("min_size", min_size),
            None if max_size is None else check_size("max_size", max_size),
            None if min_age is None else check_age("min_age", min_age),
            None if max_age is None else check_age("max_age", max_age),
        )
        lo, hi = limits.min_size, limits.max_size
        if lo is not None and hi is not None and lo > hi:
            raise InvalidRequest(
                f"min_size {limits.min_size} is more than max_size {limits.max_size}"
            )
        young, old = limits.min_age, limits.max_age
        if young is not None and old is not None and young > old:
            raise InvalidRequest(
                f"min_age {limits.min_age:g} is more than max_age {limits.max_age:g}: "
                "no file can be both older and younger than that"
            )
        return limits

    def __bool__(self) -> bool:
        return self.sizes or self.ages

    @property
    def sizes(self) -> bool:
        return self.min_size is not None or self.max_size is not None

    @property
    def ages(self) -> bool:
        return self.min_age is not None or self.max_age is not None

    def takes(self, size: int, mtime: int | None, now_ns: int) -> bool:
        """Whether a file of ``size`` bytes modified at ``mtime`` (nanoseconds since
        1970, None: unknown) is taken, ages measured back from ``now_ns``."""
        return self.takes_size(size) and self.takes_age(mtime, now_ns)

    def takes_size(self, size: int) -> bool:
        if self.min_size is not None and size < self.min_size:
            return False
        return self.max_size is None or size <= self.max_size

    def takes_age(self, mtime: int | None, now_ns: int) -> bool:
        if not self.ages:
            return True
        if mtime is None:
            return False
        age = (now_ns - mtime) / 1e9  # a time in the future is young
        if self.max_age is not None and age > self.max_age:
            return False
        return self.min_age is None or age >= self.min_age


def reference_time(now_ns: int) -> str:
    """The moment ages were measured from, as ISO 8601 (UTC, to the second)."""
    return datetime.fromtimestamp(now_ns // 10**9, UTC).isoformat()
