"""Exponential backoff with jitter."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dataferry.jobs.backoff import backoff_delay


def test_doubles_until_the_cap() -> None:
    top = [backoff_delay(n, base=1.0, cap=10.0, rand=lambda: 1.0) for n in range(1, 7)]
    assert top == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


def test_jitter_stays_in_the_upper_half() -> None:
    low = [backoff_delay(n, base=1.0, cap=10.0, rand=lambda: 0.0) for n in range(1, 5)]
    assert low == [0.5, 1.0, 2.0, 4.0]


@given(st.integers(1, 10_000), st.floats(0.01, 100), st.floats(0.01, 10_000), st.floats(0, 1))
def test_always_within_bounds(attempt: int, base: float, cap: float, r: float) -> None:
    delay = backoff_delay(attempt, base, cap, rand=lambda: r)
    ceiling = min(cap, base * 2.0 ** min(attempt - 1, 62))
    assert ceiling / 2 <= delay <= ceiling + 1e-9


def test_attempt_counts_from_one() -> None:
    with pytest.raises(ValueError):
        backoff_delay(0, 1.0, 2.0)
