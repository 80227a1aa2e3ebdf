"""Value objects of the sink engine: a stored sink, a change from a source, a claim."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import quote

from dataferry.sinks.spec import SinkSpec


class OutboxState(StrEnum):
    PENDING = "pending"  # to be sent (now or after next_attempt)
    DELIVERED = "delivered"  # the partner accepted the latest version
    DEAD = "dead"  # a dead letter: gave up after the configured attempts, or at once
    # when no attempt can succeed (the document cannot be built for this record)
    # A table row's deletion this sink never sent the record of: no request is made.
    # Kept, like a delivered deletion, until the row is removed (sinks.sweep).
    DROPPED = "dropped"


@dataclass(frozen=True, slots=True)
class Sink:
    """A sink as stored, secrets opened only in memory (never in documents)."""

    id: int
    name: str
    spec: SinkSpec
    paused: bool
    origin: str
    updated: dt.datetime

    @property
    def idle_reason(self) -> str:
        if self.paused:
            return "paused"
        if not self.spec.url:
            return "no target URL configured"
        return ""


@dataclass(frozen=True, slots=True)
class SourceChange:
    """One record's latest change as a source reports it.

    ``maybe_new``: the partner may never have seen this record (a table row whose
    ``last_sync`` is null; any collection change). Then a deletion is dropped without
    a request unless the outbox knows it was delivered or is being sent.
    """

    key: str
    status: str  # new | modified | deleted
    version: str
    changed: str  # ISO 8601: lastModified of the document
    data: dict[str, Any]
    mark: Any = None  # what the source needs back to mark the change delivered
    maybe_new: bool = False


@dataclass(frozen=True, slots=True)
class Claimed:
    """A change taken for sending under a lease."""

    id: int
    key: str
    status: str
    version: str
    changed: str
    data: dict[str, Any]
    mark: Any
    attempts: int


@dataclass(frozen=True, slots=True)
class DeletionOutcome:
    """A sink delivered or dropped the deletion ``version`` of record ``key``."""

    sink_id: int
    key: str
    version: str
    mark: Any


@dataclass(frozen=True, slots=True)
class Outcome:
    ok: bool
    status_code: int | None = None
    error: str = ""
    # Retrying cannot help (the same change fails the same way): a dead letter at once.
    permanent: bool = False


@dataclass(slots=True)
class Stats:
    """What one ``run_once`` did."""

    # Changes a poll took up into the outbox to be sent: a change the outbox knows
    # already (a table's deleted row waiting for another sink, read on every poll) is
    # not counted again, nor is a deletion dropped without a request (``dropped``).
    polled: int = 0
    delivered: int = 0
    failed: int = 0
    dead: int = 0
    dropped: int = 0
    errors: list[str] = field(default_factory=list)

    def document(self) -> dict[str, Any]:
        return {
            "polled": self.polled,
            "delivered": self.delivered,
            "failed": self.failed,
            "dead": self.dead,
            "dropped": self.dropped,
            "errors": self.errors[:20],
        }


def idempotency_key(source_label: str, key: str, version: str) -> str:
    """``<source>/<record key>/<change version>``, each part percent-encoded: the same
    change always carries the same key, so a resend after a crash is recognisable."""
    return "/".join(quote(p, safe=":") for p in (source_label, key, version))
