"""The hybrid logical clock: monotonic, close to the wall clock, bounded drift."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dataferry.errors import InvalidRequest
from dataferry.records import hlc


def test_tick_follows_the_wall_clock_when_it_is_ahead() -> None:
    assert hlc.tick(0, 1_000) == 1_000 * hlc.SCALE


def test_tick_is_logical_when_the_wall_clock_stands_still_or_goes_back() -> None:
    last = 5_000 * hlc.SCALE + 7
    assert hlc.tick(last, 5_000) == last + 1
    assert hlc.tick(last, 4_000) == last + 1  # the wall clock went back: still later


@given(st.lists(st.tuples(st.integers(0, 10**12), st.booleans()), min_size=1, max_size=50))
def test_stamps_strictly_increase_whatever_the_wall_clock_does(
    steps: list[tuple[int, bool]],
) -> None:
    clock = 0
    for wall, remote in steps:
        before = clock
        if remote:
            clock = hlc.receive(clock, wall * hlc.SCALE + 3)
            assert clock >= before
            nxt = hlc.tick(clock, 0)
            assert nxt > wall * hlc.SCALE + 3 or nxt > clock - 1
        clock = hlc.tick(clock, wall)
        assert clock > before


def test_receive_moves_the_clock_past_a_peer_stamp() -> None:
    peer = 9_000 * hlc.SCALE + 42
    clock = hlc.receive(1_000 * hlc.SCALE, peer)
    assert hlc.tick(clock, 1_000) > peer


def test_drift_within_bound_is_accepted() -> None:
    now = 1_000_000
    hlc.check_drift((now + 59_000) * hlc.SCALE, now, 60_000)
    hlc.check_drift((now - 10**6) * hlc.SCALE, now, 60_000)  # the past is always fine


def test_drift_beyond_bound_is_rejected_with_a_clear_error() -> None:
    now = 1_000_000
    with pytest.raises(InvalidRequest, match="in the future"):
        hlc.check_drift((now + 61_000) * hlc.SCALE, now, 60_000)


def test_stamps_convert_to_and_from_time() -> None:
    moment = datetime(2026, 11, 26, 4, 0, tzinfo=UTC)
    stamp = hlc.from_datetime(moment)
    assert hlc.to_datetime(stamp) == moment
    assert hlc.to_datetime(stamp + 999) == moment  # logical steps stay in the millisecond
    assert stamp < 2**53  # exact in JavaScript


def test_tick_needs_a_positive_count() -> None:
    with pytest.raises(ValueError):
        hlc.tick(0, 0, 0)
