"""The consumer's dataset state machine: every (state, event) pair, exhaustively."""

from __future__ import annotations

import itertools

import pytest

from dataferry.datasets.states import FINAL, Event, Outcome, Refused, State, decide

S, E = State, Event
MAX = 3

# Every allowed (state, event) with its target state (retries below the limit).
ALLOWED: dict[tuple[State, Event], State] = {
    (S.REGISTERED, E.REQUEST_ACCEPTED): S.TRANSFER_REQUESTED,
    (S.REGISTERED, E.REQUEST_FAILED): S.FAILED_RETRYABLE,
    (S.REGISTERED, E.REQUEST_REJECTED): S.FAILED_PERMANENT,
    (S.FAILED_RETRYABLE, E.RETRY_DUE): S.REGISTERED,
    (S.FAILED_RETRYABLE, E.RESTART): S.REGISTERED,
    (S.FAILED_PERMANENT, E.RESTART): S.REGISTERED,
    (S.CHECKING_INTEGRITY, E.INTEGRITY_OK): S.COMPLETE,
    (S.CHECKING_INTEGRITY, E.INTEGRITY_FAILED): S.FAILED_PERMANENT,
}
for unfinished in set(State) - FINAL:  # a UID no request can name: failed for good
    ALLOWED[(unfinished, E.UID_UNUSABLE)] = S.FAILED_PERMANENT
for polling in (S.TRANSFER_REQUESTED, S.IN_PROGRESS):
    ALLOWED[(polling, E.STATUS_IN_PROGRESS)] = S.IN_PROGRESS
    ALLOWED[(polling, E.STATUS_COMPLETE)] = S.CHECKING_INTEGRITY
    ALLOWED[(polling, E.STATUS_FAILED)] = S.FAILED_RETRYABLE
    for trouble in (E.STATUS_BAD_REQUEST, E.STATUS_SERVER_ERROR, E.POLL_RAISED):
        ALLOWED[(polling, trouble)] = polling  # unchanged, one more retry

COUNTS_RETRY = {
    E.REQUEST_FAILED,
    E.STATUS_FAILED,
    E.STATUS_BAD_REQUEST,
    E.STATUS_SERVER_ERROR,
    E.POLL_RAISED,
}


@pytest.mark.parametrize(("state", "event"), list(itertools.product(State, Event)))
def test_every_pair_is_allowed_or_refused(state: State, event: Event) -> None:
    target = ALLOWED.get((state, event))
    if target is None:
        with pytest.raises(Refused) as info:
            decide(state, event, 1, MAX)
        assert info.value.state is state and info.value.event is event
        return
    out = decide(state, event, 1, MAX)
    assert out.state is target
    if event is E.RESTART:
        assert out.retries == 0 and not out.backoff
    elif event in COUNTS_RETRY:
        assert out.retries == 2 and out.backoff and not out.exhausted
    else:
        assert out.retries == 1 and not out.backoff


def test_final_states_accept_nothing_but_a_restart_of_a_failure() -> None:
    for event in Event:
        with pytest.raises(Refused):
            decide(S.COMPLETE, event, 0, MAX)
    assert {S.COMPLETE, S.FAILED_PERMANENT} == FINAL


@pytest.mark.parametrize("event", [E.STATUS_BAD_REQUEST, E.STATUS_SERVER_ERROR, E.POLL_RAISED])
def test_poll_trouble_leaves_state_and_counts_until_exhausted(event: Event) -> None:
    state, retries = S.IN_PROGRESS, 0
    for expected in range(1, MAX + 1):
        out = decide(state, event, retries, MAX)
        assert out == Outcome(S.IN_PROGRESS, expected, backoff=True)
        retries = out.retries
    out = decide(state, event, retries, MAX)
    assert out == Outcome(S.FAILED_PERMANENT, MAX + 1, exhausted=True)


@pytest.mark.parametrize(
    ("state", "event"),
    [(S.REGISTERED, E.REQUEST_FAILED), (S.TRANSFER_REQUESTED, E.STATUS_FAILED)],
)
def test_retryable_failures_become_permanent_when_retries_run_out(
    state: State, event: Event
) -> None:
    assert decide(state, event, MAX - 1, MAX).state is S.FAILED_RETRYABLE
    out = decide(state, event, MAX, MAX)
    assert out.state is S.FAILED_PERMANENT and out.exhausted


def test_a_full_happy_path() -> None:
    state, retries = S.REGISTERED, 0
    for event in (
        E.REQUEST_ACCEPTED,
        E.POLL_RAISED,
        E.STATUS_IN_PROGRESS,
        E.STATUS_IN_PROGRESS,
        E.STATUS_COMPLETE,
        E.INTEGRITY_OK,
    ):
        out = decide(state, event, retries, MAX)
        state, retries = out.state, out.retries
    assert (state, retries) == (S.COMPLETE, 1)


def test_restart_after_integrity_failure_starts_over() -> None:
    out = decide(S.CHECKING_INTEGRITY, E.INTEGRITY_FAILED, 2, MAX)
    assert out.state is S.FAILED_PERMANENT
    again = decide(out.state, E.RESTART, out.retries, MAX)
    assert again == Outcome(S.REGISTERED, 0)


@pytest.mark.parametrize("state", sorted(set(State) - FINAL))
def test_an_unusable_uid_fails_for_good_once_whatever_the_retries(state: State) -> None:
    out = decide(state, E.UID_UNUSABLE, MAX, MAX)  # even with no retry left
    assert out == Outcome(S.FAILED_PERMANENT, MAX)
    with pytest.raises(Refused):  # and once there, it stays: no second transition
        decide(out.state, E.UID_UNUSABLE, out.retries, MAX)
