"""The range every duration a user sets (a setting, a sink's waits) must lie in."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

# The shortest: a hundredth of a second. Shorter ones (1e-300) turned retries, polls
# and ticks into tight loops burning a CPU core.
MIN_SECONDS = 0.01
# The longest: a year. Longer ones (1e308, or infinity) overflowed the date arithmetic
# of leases, retries and sessions.
MAX_SECONDS = 365 * 24 * 3600.0

Seconds = Annotated[float, Field(ge=MIN_SECONDS, le=MAX_SECONDS)]
