"""The job state machine: pure, no I/O.

queued --claim--> running --succeed--> succeeded
                    |  \\--fail-----> failed   --user_retry--> queued
                    |   \\--retry_later--> retrying --due--> queued
                    \\--lease_expired--> queued
queued | running | retrying --cancel--> cancelled --user_retry--> queued
"""

from __future__ import annotations

from enum import StrEnum

from dataferry.errors import Conflict


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    RETRYING = "retrying"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def final(self) -> bool:
        return self in FINAL_STATES


class JobEvent(StrEnum):
    CLAIM = "claim"
    SUCCEED = "succeed"
    FAIL = "fail"
    RETRY_LATER = "retry_later"
    DUE = "due"
    LEASE_EXPIRED = "lease_expired"
    CANCEL = "cancel"
    USER_RETRY = "user_retry"


FINAL_STATES = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED})

TRANSITIONS: dict[tuple[JobState, JobEvent], JobState] = {
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


# How a refusal names an event and a state to a user ("cannot retry a job that has
# succeeded (only failed or cancelled jobs)", not "cannot user retry a job that is
# succeeded").
_VERBS = {JobEvent.USER_RETRY: "retry", JobEvent.RETRY_LATER: "schedule a retry of"}
_PHRASES = {
    JobState.SUCCEEDED: "has succeeded",
    JobState.FAILED: "has failed",
    JobState.CANCELLED: "was cancelled",
}


class InvalidTransition(Conflict):
    def __init__(self, state: JobState, event: JobEvent) -> None:
        verb = _VERBS.get(event, event.value.replace("_", " "))
        phrase = _PHRASES.get(state, f"is {state.value}")
        names = [s.value for s in JobState if s in sources_of(event)]
        allowed = " or ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)
        super().__init__(f"cannot {verb} a job that {phrase} (only {allowed} jobs)")
        self.state = state
        self.event = event


def next_state(state: JobState, event: JobEvent) -> JobState:
    """The state after ``event``, or :class:`InvalidTransition` if it is not allowed."""
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise InvalidTransition(state, event) from None


def sources_of(event: JobEvent) -> frozenset[JobState]:
    """Every state from which ``event`` is allowed (used in guarded SQL updates)."""
    return frozenset(s for (s, e) in TRANSITIONS if e is event)
