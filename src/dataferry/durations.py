"""The range every duration a user sets (a setting, a sink's waits) must lie in, and
the words a person writes one in (``7d``)."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field

from dataferry.errors import InvalidRequest
from dataferry.text import cut

# The shortest: a hundredth of a second. Shorter ones (1e-300) turned retries, polls
# and ticks into tight loops burning a CPU core.
MIN_SECONDS = 0.01
# The longest: a year. Longer ones (1e308, or infinity) overflowed the date arithmetic
# of leases, retries and sessions.
MAX_SECONDS = 365 * 24 * 3600.0

Seconds = Annotated[float, Field(ge=MIN_SECONDS, le=MAX_SECONDS)]

_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 7 * 86400.0}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw]?)")


def parse_duration(field: str, text: str) -> float:
    """``"30s"``, ``"15m"``, ``"12h"``, ``"7d"``, ``"2w"`` (or plain seconds) -> seconds.
    Only the form is checked here; each caller holds the value to its own range."""
    match = _DURATION.fullmatch(text.strip())
    if not match:
        raise InvalidRequest(
            f"{field} {cut(text)!r} is not a duration: a number, then s, m, h, d or w "
            "(e.g. 30s, 15m, 12h, 7d, 2w)"
        )
    return float(match[1]) * _UNITS[match[2]]
