"""The job state machine: every (state, event) pair is either allowed or refused."""

from __future__ import annotations

import itertools

import pytest

from dataferry.jobs.states import (
    FINAL_STATES,
    TRANSITIONS,
    InvalidTransition,
    JobEvent,
    JobState,
    next_state,
    sources_of,
)

ALLOWED = {
    (JobState.QUEUED, JobEvent.CLAIM): JobState.RUNNING,
    (JobState.QUEUED, JobEvent.CANCEL): JobState.CANCELLED,
    (JobState.RUNNING, JobEvent.SUCCEED): JobState.SUCCEEDED,
    (JobState.RUNNING, JobEvent.FAIL): JobState.FAILED,
    (JobState.RUNNING, JobEvent.RETRY_LATER): JobState.RETRYING,
    (JobState.RUNNING, JobEvent.LEASE_EXPIRED): JobState.QUEUED,
    (JobState.RUNNING, JobEvent.CANCEL): JobState.CANCELLED,
    (JobState.RETRYING, JobEvent.DUE): JobState.QUEUED,
    (JobState.RETRYING, JobEvent.CANCEL): JobState.CANCELLED,
    (JobState.FAILED, JobEvent.USER_RETRY): JobState.QUEUED,
    (JobState.CANCELLED, JobEvent.USER_RETRY): JobState.QUEUED,
}


@pytest.mark.parametrize(("state", "event"), list(itertools.product(JobState, JobEvent)))
def test_every_pair(state: JobState, event: JobEvent) -> None:
    if (state, event) in ALLOWED:
        assert next_state(state, event) is ALLOWED[(state, event)]
    else:
        with pytest.raises(InvalidTransition) as info:
            next_state(state, event)
        assert state.value in str(info.value)
        assert info.value.status_code == 409


def test_table_is_exactly_the_documented_one() -> None:
    assert dict(TRANSITIONS) == ALLOWED


def test_succeeded_is_terminal_and_final_states() -> None:
    assert {JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED} == FINAL_STATES
    assert all(s.final == (s in FINAL_STATES) for s in JobState)
    assert not [e for e in JobEvent if (JobState.SUCCEEDED, e) in TRANSITIONS]


def test_sources_of() -> None:
    assert sources_of(JobEvent.CANCEL) == {JobState.QUEUED, JobState.RUNNING, JobState.RETRYING}
    assert sources_of(JobEvent.USER_RETRY) == {JobState.FAILED, JobState.CANCELLED}
    assert sources_of(JobEvent.CLAIM) == {JobState.QUEUED}


def test_message_reads_well() -> None:
    message = r"cannot retry a job that has succeeded \(only failed or cancelled jobs\)"
    with pytest.raises(InvalidTransition, match=message):
        next_state(JobState.SUCCEEDED, JobEvent.USER_RETRY)
    message = r"cannot cancel a job that was cancelled \(only queued, running or retrying jobs\)"
    with pytest.raises(InvalidTransition, match=message):
        next_state(JobState.CANCELLED, JobEvent.CANCEL)
    with pytest.raises(InvalidTransition, match=r"cannot claim a job that is running \(only q"):
        next_state(JobState.RUNNING, JobEvent.CLAIM)
