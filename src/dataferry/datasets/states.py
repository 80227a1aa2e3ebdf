"""The consumer's state machine for one synced dataset (pure: no I/O).

    registered -> transfer_requested -> in_progress -> checking_integrity -> complete

``failed_retryable``: a network or server error; the tick retries it after a backoff.
``failed_permanent``: a bad request, an integrity failure, retries exhausted, or a
UID no request can name (stored before notify checked UIDs); it stays until an
operator restarts it. A status poll that answers "bad request" or
"server error", or raises, leaves the state as it is and counts a retry.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class State(StrEnum):
    REGISTERED = "registered"
    TRANSFER_REQUESTED = "transfer_requested"
    IN_PROGRESS = "in_progress"
    CHECKING_INTEGRITY = "checking_integrity"
    COMPLETE = "complete"
    FAILED_RETRYABLE = "failed_retryable"
    FAILED_PERMANENT = "failed_permanent"


FINAL = frozenset({State.COMPLETE, State.FAILED_PERMANENT})
#: states in which a transfer on the provider is being followed by polling
POLLING = frozenset({State.TRANSFER_REQUESTED, State.IN_PROGRESS})


class Event(StrEnum):
    REQUEST_ACCEPTED = "request_accepted"  # the provider started (or has) a transfer
    REQUEST_FAILED = "request_failed"  # network or server error while requesting
    REQUEST_REJECTED = "request_rejected"  # the provider says the request is bad
    STATUS_IN_PROGRESS = "status_in_progress"
    STATUS_COMPLETE = "status_complete"
    STATUS_FAILED = "status_failed"  # the provider's transfer failed
    STATUS_BAD_REQUEST = "status_bad_request"
    STATUS_SERVER_ERROR = "status_server_error"
    POLL_RAISED = "poll_raised"  # no answer at all (network down, peer not running)
    INTEGRITY_OK = "integrity_ok"
    INTEGRITY_FAILED = "integrity_failed"
    RETRY_DUE = "retry_due"  # the backoff of a failed_retryable dataset is over
    RESTART = "restart"  # an operator's restart
    # the UID is not one a provider can publish, so no request can name it (a row
    # stored before notify checked UIDs): from any state that is not final
    UID_UNUSABLE = "uid_unusable"


class Refused(Exception):
    """The event is not allowed in this state; nothing changes."""

    def __init__(self, state: State, event: Event) -> None:
        super().__init__(f"{event.value} is not allowed in state {state.value}")
        self.state = state
        self.event = event


@dataclass(frozen=True, slots=True)
class Outcome:
    state: State
    retries: int
    #: whether the next step waits for a backoff (``retries`` decides how long)
    backoff: bool = False
    exhausted: bool = False


# Events that leave the state unchanged and count a retry.
_POLL_TROUBLE = frozenset({Event.STATUS_BAD_REQUEST, Event.STATUS_SERVER_ERROR, Event.POLL_RAISED})


def _retry(state: State, retries: int, max_retries: int, target: State) -> Outcome:
    if retries + 1 > max_retries:
        return Outcome(State.FAILED_PERMANENT, retries + 1, exhausted=True)
    return Outcome(target, retries + 1, backoff=True)


def decide(state: State, event: Event, retries: int, max_retries: int) -> Outcome:
    """The state after ``event``; raises :class:`Refused` if it does not apply."""
    S, E = State, Event
    if event is E.RESTART:
        if state in (S.FAILED_PERMANENT, S.FAILED_RETRYABLE):
            return Outcome(S.REGISTERED, 0)
        raise Refused(state, event)
    if event is E.UID_UNUSABLE:
        if state in FINAL:
            raise Refused(state, event)
        return Outcome(S.FAILED_PERMANENT, retries)
    if state is S.REGISTERED:
        if event is E.REQUEST_ACCEPTED:
            return Outcome(S.TRANSFER_REQUESTED, retries)
        if event is E.REQUEST_FAILED:
            return _retry(state, retries, max_retries, S.FAILED_RETRYABLE)
        if event is E.REQUEST_REJECTED:
            return Outcome(S.FAILED_PERMANENT, retries)
    elif state in POLLING:
        if event is E.STATUS_IN_PROGRESS:
            return Outcome(S.IN_PROGRESS, retries)
        if event is E.STATUS_COMPLETE:
            return Outcome(S.CHECKING_INTEGRITY, retries)
        if event is E.STATUS_FAILED:
            return _retry(state, retries, max_retries, S.FAILED_RETRYABLE)
        if event in _POLL_TROUBLE:
            return _retry(state, retries, max_retries, state)
    elif state is S.CHECKING_INTEGRITY:
        if event is E.INTEGRITY_OK:
            return Outcome(S.COMPLETE, retries)
        if event is E.INTEGRITY_FAILED:
            return Outcome(S.FAILED_PERMANENT, retries)
    elif state is S.FAILED_RETRYABLE and event is E.RETRY_DUE:
        return Outcome(S.REGISTERED, retries)
    raise Refused(state, event)
