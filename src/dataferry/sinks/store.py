"""All SQL about sinks and their outbox. Services and the engine call this; nothing
else touches the ``sinks`` and ``sink_outbox`` tables.

The outbox holds one row per (sink, record): the latest change (coalesced), the
version last delivered, attempts and a lease. A row is sent by whoever holds its
lease; at most one send per record is in flight, so a record's changes are never
reordered, while different records are sent independently.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session
from tenacity import retry, retry_if_exception, stop_after_attempt, wait_random_exponential

from dataferry.db.base import utcnow
from dataferry.db.engine import Database
from dataferry.db.models import SinkOutboxRow, SinkRow
from dataferry.errors import Conflict, NotFound
from dataferry.jobs.store import rowcount
from dataferry.sinks.model import Claimed, DeletionOutcome, OutboxState, SourceChange

PENDING = OutboxState.PENDING.value
DELIVERED = OutboxState.DELIVERED.value
DEAD = OutboxState.DEAD.value
DROPPED = OutboxState.DROPPED.value
_CHUNK = 500


def _is_deadlock(exc: BaseException) -> bool:
    """PostgreSQL aborted our transaction to break a lock cycle (or a serialisation
    conflict): the whole transaction may simply run again."""
    sqlstate = getattr(getattr(exc, "orig", None), "sqlstate", None)
    return isinstance(exc, OperationalError) and sqlstate in ("40P01", "40001")


# Polls and completions of several processes update the same outbox rows in one
# transaction each; a lock cycle between two of them is resolved by running again.
_retry_deadlocks = retry(
    retry=retry_if_exception(_is_deadlock),
    stop=stop_after_attempt(5),
    wait=wait_random_exponential(multiplier=0.02, max=0.5),
    reraise=True,
)


def _pending(c: SourceChange, status: str, now: datetime) -> dict[str, Any]:
    """Outbox columns of change ``c`` waiting to be sent as ``status``."""
    return {
        "state": PENDING,
        "status": status,
        "version": c.version,
        "data": c.data,
        "changed": c.changed,
        "mark": c.mark,
        "updated": now,
    }


def _new_row(c: SourceChange, status: str, now: datetime, sink_id: int, key: str) -> dict[str, Any]:
    """A new outbox row of change ``c`` for sink ``sink_id``, waiting to be sent."""
    return {
        **_pending(c, status, now),
        "sink_id": sink_id,
        "key": key,
        "attempts": 0,
        "sent": False,
        "next_attempt": now,
        "last_error": "",
        "created": now,
    }


@dataclass(frozen=True, slots=True)
class StoredSink:
    id: int
    name: str
    spec: dict[str, Any]
    secrets: str
    url: str
    paused: bool
    origin: str
    cursor: int
    last_poll: datetime | None
    last_error: str
    last_delivered: datetime | None
    delivered_total: int
    failed_total: int
    created: datetime
    updated: datetime

    @classmethod
    def from_row(cls, r: SinkRow) -> StoredSink:
        return cls(
            id=r.id,
            name=r.name,
            spec=dict(r.spec or {}),
            secrets=r.secrets,
            url=r.url,
            paused=r.paused,
            origin=r.origin,
            cursor=r.cursor,
            last_poll=r.last_poll,
            last_error=r.last_error,
            last_delivered=r.last_delivered,
            delivered_total=r.delivered_total,
            failed_total=r.failed_total,
            created=r.created,
            updated=r.updated,
        )


class ClaimTaken(Conflict):
    """Another sink holds the claim of the last_sync column (``sinks.sharing.claim``):
    it was stored since the service's check looked."""

    def __init__(self, other: str) -> None:
        super().__init__(f"sink {other!r} already sets this last_sync column")
        self.other = other


class Superseded(Exception):
    """The sink's definition changed since this poll or claim began (``updated``
    differs): its work belongs to the old source and is not recorded."""


@dataclass(frozen=True, slots=True)
class Recorded:
    """What ``record_changes`` did with a batch of changes."""

    # Changes taken up to be sent: new outbox rows and rows given a newer change. A
    # change the outbox already knows (a deleted row waiting for another sink reading
    # the table, read again on every poll) is not counted, nor is a drop.
    taken: int
    # Deletions of records the partner never saw, dropped without any request.
    drops: list[SourceChange]


@dataclass(frozen=True, slots=True)
class Failure:
    claimed: Claimed
    error: str
    permanent: bool = False  # no retry can succeed: a dead letter at once


def _chunks(items: Sequence[str]) -> list[list[str]]:
    return [list(items[i : i + _CHUNK]) for i in range(0, len(items), _CHUNK)]


class SinkStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- definitions ------------------------------------------------------------
    def create(
        self,
        name: str,
        spec: dict[str, Any],
        secrets: str,
        url: str,
        paused: bool,
        origin: str,
        claim: str | None = None,
    ) -> StoredSink:
        now = utcnow()
        row = SinkRow(
            name=name,
            spec=spec,
            secrets=secrets,
            last_sync_claim=claim,
            url=url,
            paused=paused,
            origin=origin,
            cursor=0,
            last_error="",
            delivered_total=0,
            failed_total=0,
            created=now,
            updated=now,
        )
        try:
            with self.db.session() as s:
                if s.scalar(select(SinkRow.id).where(SinkRow.name == name)) is not None:
                    raise Conflict(f"sink {name!r} already exists")
                s.add(row)
                s.flush()
                return StoredSink.from_row(row)
        except IntegrityError as exc:
            self._claim_taken(claim, exc)
            raise Conflict(f"sink {name!r} already exists") from exc

    def update(self, name: str, forget_outbox: bool = False, **values: Any) -> StoredSink:
        """Set columns of a sink; ``last_sync_claim`` among them may be taken (ClaimTaken).
        ``forget_outbox``: its outbox is emptied in the same transaction (a new source:
        what was delivered or pending is about records of the old one)."""
        try:
            with self.db.session() as s:
                # The sink's row first, as record_changes and complete lock it: no lock cycle.
                row = self._row(s, name, lock=forget_outbox)
                if forget_outbox:
                    s.execute(delete(SinkOutboxRow).where(SinkOutboxRow.sink_id == row.id))
                for k, v in values.items():
                    setattr(row, k, v)
                row.updated = utcnow()
                s.flush()
                return StoredSink.from_row(row)
        except IntegrityError as exc:
            self._claim_taken(values.get("last_sync_claim"), exc)
            raise

    def _claim_taken(self, claim: str | None, exc: IntegrityError) -> None:
        """Raise ClaimTaken if another sink holds ``claim`` (what the write collided with)."""
        if claim is None:
            return
        with self.db.read() as s:
            other = s.scalar(select(SinkRow.name).where(SinkRow.last_sync_claim == claim))
        if other is not None:
            raise ClaimTaken(other) from exc

    def _row(self, s: Session, name: str, lock: bool = False) -> SinkRow:
        query = select(SinkRow).where(SinkRow.name == name)
        if lock and not self.db.is_sqlite:
            query = query.with_for_update()
        row = s.scalar(query)
        if row is None:
            raise NotFound(f"sink {name!r} does not exist")
        return row

    def get(self, name: str) -> StoredSink:
        with self.db.read() as s:
            return StoredSink.from_row(self._row(s, name))

    def find(self, name: str) -> StoredSink | None:
        with self.db.read() as s:
            row = s.scalar(select(SinkRow).where(SinkRow.name == name))
            return None if row is None else StoredSink.from_row(row)

    def by_id(self, sink_id: int) -> StoredSink | None:
        with self.db.read() as s:
            row = s.get(SinkRow, sink_id)
            return None if row is None else StoredSink.from_row(row)

    def all(self) -> list[StoredSink]:
        with self.db.read() as s:
            return [
                StoredSink.from_row(r) for r in s.scalars(select(SinkRow).order_by(SinkRow.name))
            ]

    def remove(self, name: str) -> None:
        with self.db.session() as s:
            row = self._row(s, name)
            s.execute(delete(SinkOutboxRow).where(SinkOutboxRow.sink_id == row.id))
            s.delete(row)

    # -- polling ----------------------------------------------------------------
    def take_poll(self, sink_id: int, owner: str, seconds: float) -> int | None:
        """Take the right to poll this sink's source (one poller at a time, across
        processes); returns the feed cursor, or None if someone else is polling."""
        now = utcnow()
        with self.db.session() as s:
            taken = rowcount(
                s.execute(
                    update(SinkRow)
                    .where(
                        SinkRow.id == sink_id,
                        (SinkRow.poll_until.is_(None))
                        | (SinkRow.poll_until < now)
                        | (SinkRow.poll_owner == owner),
                    )
                    .values(poll_owner=owner, poll_until=now + timedelta(seconds=seconds))
                )
            )
            if not taken:
                return None
            return int(s.scalar(select(SinkRow.cursor).where(SinkRow.id == sink_id)) or 0)

    def end_poll(self, sink_id: int, owner: str, error: str = "") -> None:
        with self.db.session() as s:
            s.execute(
                update(SinkRow)
                .where(SinkRow.id == sink_id, SinkRow.poll_owner == owner)
                .values(
                    poll_owner=None,
                    poll_until=None,
                    last_poll=utcnow(),
                    # A good poll keeps the last delivery error visible.
                    **({"last_error": error} if error else {}),
                )
            )

    @_retry_deadlocks
    def record_changes(
        self,
        sink_id: int,
        changes: Sequence[SourceChange],
        cursor: int | None = None,
        definition: datetime | None = None,
        track_deletions: bool = False,
    ) -> Recorded:
        """Coalesce ``changes`` into the outbox (and move the feed cursor, in the same
        transaction). Returns how many were taken up to be sent, and the deletions of
        records the partner never saw, dropped without any request. ``definition``: the
        sink's ``updated`` the changes were read with; Superseded if it changed since.
        ``track_deletions`` (a table): a drop is kept as a ``dropped`` outcome, as a
        delivered deletion is, until the row is removed once every sink reading the
        table has one (``sinks.sweep``)."""
        drops: list[SourceChange] = []
        taken = 0
        now = utcnow()
        o = SinkOutboxRow
        with self.db.session() as s:
            if definition is not None:
                # Locked (PostgreSQL; SQLite writes one at a time): a change of source
                # commits before this (we see it) or after (it empties what we write).
                query = select(SinkRow.updated).where(SinkRow.id == sink_id)
                if not self.db.is_sqlite:
                    query = query.with_for_update()
                if s.scalar(query) != definition:
                    raise Superseded()
            for start in range(0, len(changes), _CHUNK):
                chunk = changes[start : start + _CHUNK]
                # A record may change twice in one batch: keep its last change only.
                latest = {c.key: c for c in chunk}
                known = {
                    r.key: r
                    for r in s.execute(
                        select(
                            o.id,
                            o.key,
                            o.version,
                            o.state,
                            o.sent,
                            o.delivered_version,
                            o.lease_until,
                        ).where(o.sink_id == sink_id, o.key.in_(list(latest)))
                    )
                }
                inserts: list[dict[str, Any]] = []
                updates: list[dict[str, Any]] = []
                unseen: dict[int, SourceChange] = {}
                for key, c in latest.items():
                    row = known.get(key)
                    if row is not None and row.version == c.version:
                        continue  # already known (pending, delivered or dead)
                    # Seen: the partner has (or may have) this record.
                    seen = row is not None and (row.sent or row.delivered_version is not None)
                    if c.status == "deleted" and c.maybe_new and not seen:
                        if row is None and track_deletions:
                            inserts.append(
                                {**_new_row(c, c.status, now, sink_id, key), "state": DROPPED}
                            )
                            drops.append(c)
                        elif row is None:
                            drops.append(c)
                        else:
                            unseen[row.id] = c  # unless a sender claims it meanwhile
                        continue
                    status = c.status
                    if status == "new" and seen:
                        status = "modified"
                    elif status == "modified" and c.maybe_new and not seen:
                        status = "new"
                    values = _pending(c, status, now)
                    if row is None:
                        inserts.append(_new_row(c, status, now, sink_id, key))
                    elif row.state != PENDING:  # delivered or dead: a fresh start
                        updates.append({**values, "id": row.id, "attempts": 0, "next_attempt": now})
                    else:
                        updates.append({**values, "id": row.id})
                if unseen:
                    # Conditional on "never sent": a claim committed since our read (or
                    # waited on by this statement) makes the row seen, and then the
                    # deletion must be delivered, not dropped.
                    never_sent = (o.sent.is_(False), o.delivered_version.is_(None))
                    gone: set[int] = set()
                    if track_deletions:
                        for row_id, c in sorted(unseen.items()):  # one lock order
                            stmt = (
                                update(o)
                                .where(o.id == row_id, *never_sent)
                                .values(
                                    {**_pending(c, c.status, now), "state": DROPPED, "attempts": 0}
                                )
                                .returning(o.id)
                                .execution_options(synchronize_session=False)
                            )
                            if s.scalar(stmt) is not None:
                                gone.add(row_id)
                    else:
                        gone.update(
                            s.scalars(
                                delete(o).where(o.id.in_(list(unseen)), *never_sent).returning(o.id)
                            )
                        )
                    for row_id, c in unseen.items():
                        if row_id in gone:
                            drops.append(c)
                        else:
                            updates.append({**_pending(c, c.status, now), "id": row_id})
                taken += sum(r["state"] == PENDING for r in inserts) + len(updates)
                if inserts:
                    s.execute(insert(o), inserts)
                if updates:
                    updates.sort(key=lambda u: int(u["id"]))  # lock rows in one order
                    s.execute(update(o), updates)
            if cursor is not None:
                s.execute(update(SinkRow).where(SinkRow.id == sink_id).values(cursor=cursor))
        return Recorded(taken, drops)

    # -- delivery ---------------------------------------------------------------
    def claim(
        self,
        sink_id: int,
        owner: str,
        limit: int,
        lease_seconds: float,
        definition: datetime | None = None,
    ) -> list[Claimed]:
        """Take up to ``limit`` due changes under a lease (one send per record at a time).
        ``definition``: the sink's ``updated`` they are sent with; none is taken once
        it changed (a sender with the old source would mark the new one's rows)."""
        now = utcnow()
        current = select(SinkRow.id).where(SinkRow.id == sink_id)
        if definition is not None:
            current = current.where(SinkRow.updated == definition)
        due = (
            select(SinkOutboxRow.id)
            .where(
                SinkOutboxRow.sink_id == sink_id,
                SinkOutboxRow.state == PENDING,
                SinkOutboxRow.next_attempt <= now,
                (SinkOutboxRow.lease_until.is_(None)) | (SinkOutboxRow.lease_until < now),
            )
            .limit(1)
        )
        with self.db.read() as s:  # nothing due: no write lock taken (SQLite)
            if s.scalar(due) is None:
                return []
        with self.db.session() as s:
            query = (
                select(SinkOutboxRow)
                .where(
                    SinkOutboxRow.sink_id.in_(current),  # one snapshot with the rows
                    SinkOutboxRow.state == PENDING,
                    SinkOutboxRow.next_attempt <= now,
                    (SinkOutboxRow.lease_until.is_(None)) | (SinkOutboxRow.lease_until < now),
                )
                .order_by(SinkOutboxRow.next_attempt, SinkOutboxRow.id)
                .limit(limit)
            )
            if not self.db.is_sqlite:
                query = query.with_for_update(skip_locked=True)
            rows = list(s.scalars(query))
            if not rows:
                return []
            until = now + timedelta(seconds=lease_seconds)
            s.execute(
                update(SinkOutboxRow)
                .where(SinkOutboxRow.id.in_([r.id for r in rows]))
                .values(lease_owner=owner, lease_until=until, sent=True)
                .execution_options(synchronize_session=False)
            )
            return [
                Claimed(
                    id=r.id,
                    key=r.key,
                    status=r.status,
                    version=r.version,
                    changed=r.changed,
                    data=dict(r.data or {}),
                    mark=r.mark,
                    attempts=r.attempts,
                )
                for r in rows
            ]

    @_retry_deadlocks
    def complete(
        self,
        sink_id: int,
        owner: str,
        delivered: Iterable[Claimed],
        failed: Iterable[Failure],
        retry_delay: Any,
        give_up_after: int | None,
        track_deletions: bool = False,
    ) -> tuple[int, int]:
        """Record outcomes in one transaction. A delivered change whose record changed
        meanwhile stays pending (the newer version is sent next); a failed one waits
        ``retry_delay(attempts)`` seconds, or becomes a dead letter after
        ``give_up_after`` attempts (a permanent failure at once). A delivered deletion
        is forgotten, or with ``track_deletions`` (a table) kept as delivered until the
        row is removed (``sinks.sweep``): the row may wait for other sinks reading
        the table, and is seen again meanwhile. Returns (delivered, newly dead)."""
        now = utcnow()
        done = list(delivered)
        bad = list(failed)
        dead = 0
        o = SinkOutboxRow
        with self.db.session() as s:
            # The sink's row before its outbox rows, the order record_changes and a
            # change of source lock them in (PostgreSQL): no lock cycle between them.
            values: dict[str, Any] = {
                "delivered_total": SinkRow.delivered_total + len(done),
                "failed_total": SinkRow.failed_total + len(bad),
            }
            if done:
                values["last_delivered"] = now
            if bad:
                values["last_error"] = bad[-1].error[:2000]
            s.execute(update(SinkRow).where(SinkRow.id == sink_id).values(**values))
            ids = sorted({c.id for c in done} | {f.claimed.id for f in bad})
            rows: dict[int, Any] = {}
            for start in range(0, len(ids), _CHUNK):
                query = (
                    select(o.id, o.version, o.state, o.lease_owner, o.attempts)
                    .where(o.id.in_(ids[start : start + _CHUNK]))
                    .order_by(o.id)
                )
                if not self.db.is_sqlite:
                    # Decide on rows a poll cannot change until we commit: otherwise a
                    # newer version recorded meanwhile would be marked delivered.
                    query = query.with_for_update()
                rows.update((r.id, r) for r in s.execute(query))
            gone: list[int] = []
            finished: list[dict[str, Any]] = []
            superseded: list[dict[str, Any]] = []
            retries: list[dict[str, Any]] = []
            dead_ids: list[dict[str, Any]] = []
            for c in done:
                row = rows.get(c.id)
                if row is None:
                    continue
                lease = (
                    {"lease_owner": None, "lease_until": None} if row.lease_owner == owner else {}
                )
                if row.version == c.version:
                    if c.status == "deleted" and not track_deletions:
                        gone.append(row.id)  # the record is gone on both sides
                        continue
                    finished.append(
                        {
                            "id": row.id,
                            "state": DELIVERED,
                            "delivered_version": c.version,
                            "delivered_at": now,
                            "attempts": 0,
                            "last_error": "",
                            "updated": now,
                            "lease_owner": None,
                            "lease_until": None,
                        }
                    )
                elif row.state == DELIVERED:
                    # A late answer for an older version: the newer one is already
                    # delivered (this lease lapsed and someone else sent it). Nothing to do.
                    continue
                else:
                    superseded.append(
                        {
                            "id": row.id,
                            "delivered_version": c.version,
                            "delivered_at": now,
                            "attempts": 0,
                            "next_attempt": now,
                            "updated": now,
                            **lease,
                        }
                    )
            for f in bad:
                row = rows.get(f.claimed.id)
                if row is None:
                    continue
                lease = (
                    {"lease_owner": None, "lease_until": None} if row.lease_owner == owner else {}
                )
                base = {"id": row.id, "last_error": f.error[:2000], "updated": now, **lease}
                if row.version != f.claimed.version:
                    # A newer change came in meanwhile: it gets a fresh start.
                    retries.append({**base, "attempts": 0, "next_attempt": now})
                    continue
                attempts = row.attempts + 1
                if f.permanent or (give_up_after is not None and attempts >= give_up_after):
                    dead_ids.append({**base, "attempts": attempts, "state": DEAD})
                    dead += 1
                else:
                    delay = timedelta(seconds=retry_delay(attempts))
                    retries.append({**base, "attempts": attempts, "next_attempt": now + delay})
            for params in (finished, superseded, retries, dead_ids):
                # Rows may differ in keys (lease or not): group them for executemany.
                groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
                for p in params:
                    groups.setdefault(tuple(sorted(p)), []).append(p)
                for group in groups.values():
                    s.execute(update(o), group)
            if gone:
                s.execute(delete(o).where(o.id.in_(gone)))
        return len(done), dead

    def release(self, owner: str, ids: Sequence[int]) -> None:
        """Give back leases not used (a stopping process)."""
        if not ids:
            return
        with self.db.session() as s:
            s.execute(
                update(SinkOutboxRow)
                .where(SinkOutboxRow.id.in_(list(ids)), SinkOutboxRow.lease_owner == owner)
                .values(lease_owner=None, lease_until=None)
            )

    def next_due(self, sink_id: int) -> datetime | None:
        with self.db.read() as s:
            value: datetime | None = s.scalar(
                select(func.min(SinkOutboxRow.next_attempt)).where(
                    SinkOutboxRow.sink_id == sink_id, SinkOutboxRow.state == PENDING
                )
            )
            return value

    # -- deletions of table rows (sinks.sweep) ---------------------------------
    def deletion_outcomes(
        self, sink_ids: Iterable[int], keys: Iterable[str] | None = None
    ) -> list[DeletionOutcome]:
        """Deletions that sinks ``sink_ids`` delivered (the partner accepted that very
        version) or dropped, of records ``keys`` (None: all)."""
        o = SinkOutboxRow
        query = select(o.sink_id, o.key, o.version, o.mark).where(
            o.sink_id.in_(list(sink_ids)),
            o.status == "deleted",
            (o.state == DROPPED) | ((o.state == DELIVERED) & (o.delivered_version == o.version)),
        )
        wanted = None if keys is None else sorted(set(keys))
        chunks = [None] if wanted is None else _chunks(wanted)
        out: list[DeletionOutcome] = []
        with self.db.read() as s:
            for chunk in chunks:
                q = query if chunk is None else query.where(o.key.in_(chunk))
                out.extend(
                    DeletionOutcome(r.sink_id, r.key, r.version, r.mark) for r in s.execute(q)
                )
        return out

    def forget_deletions(
        self, sink_ids: Iterable[int], deletions: Iterable[tuple[str, str]]
    ) -> None:
        """Forget the outcomes of deletions (key, version) whose rows are gone from the
        table: a row inserted later with that key is a new record."""
        o = SinkOutboxRow
        wanted = set(deletions)
        outcome = (o.status == "deleted", o.state.in_([DELIVERED, DROPPED]))
        with self.db.session() as s:
            for chunk in _chunks(sorted({k for k, _ in wanted})):
                found = s.execute(
                    select(o.id, o.key, o.version).where(
                        o.sink_id.in_(list(sink_ids)), o.key.in_(chunk), *outcome
                    )
                )
                ids = [r.id for r in found if (r.key, r.version) in wanted]
                if ids:  # still an outcome: a change recorded meanwhile stays
                    s.execute(delete(o).where(o.id.in_(ids), *outcome))

    # -- inspection and operator actions ----------------------------------------
    def counts(self, sink_id: int) -> dict[str, int]:
        """Outbox rows by state, and of them: ``retrying`` and ``in_flight`` (pending),
        ``waiting_for_other_sinks``: deletions of table rows this sink has its outcome
        for (delivered or dropped) whose row stays until every sink reading the table
        has one (``sinks.sweep``); removed with the row."""
        now = utcnow()
        out = dict.fromkeys(("pending", "retrying", "in_flight", "delivered", "dead", "dropped"), 0)
        o = SinkOutboxRow
        with self.db.read() as s:
            for state, n in s.execute(
                select(o.state, func.count()).where(o.sink_id == sink_id).group_by(o.state)
            ):
                if state in out:
                    out[state] = int(n)
            out["waiting_for_other_sinks"] = int(
                s.scalar(
                    select(func.count()).where(
                        o.sink_id == sink_id,
                        o.status == "deleted",
                        (o.state == DROPPED)
                        | ((o.state == DELIVERED) & (o.delivered_version == o.version)),
                    )
                )
                or 0
            )
            out["retrying"] = int(
                s.scalar(
                    select(func.count()).where(
                        SinkOutboxRow.sink_id == sink_id,
                        SinkOutboxRow.state == PENDING,
                        SinkOutboxRow.attempts > 0,
                    )
                )
                or 0
            )
            out["in_flight"] = int(
                s.scalar(
                    select(func.count()).where(
                        SinkOutboxRow.sink_id == sink_id,
                        SinkOutboxRow.state == PENDING,
                        SinkOutboxRow.lease_until > now,
                    )
                )
                or 0
            )
        return out

    def all_counts(self) -> dict[str, dict[str, int]]:
        """{sink name: {state: count}} for metrics."""
        out: dict[str, dict[str, int]] = {}
        with self.db.read() as s:
            for name, state, n in s.execute(
                select(SinkRow.name, SinkOutboxRow.state, func.count())
                .join(SinkOutboxRow, SinkOutboxRow.sink_id == SinkRow.id)
                .group_by(SinkRow.name, SinkOutboxRow.state)
            ):
                out.setdefault(name, {})[state] = int(n)
        return out

    def failures(self, sink_id: int, limit: int = 1000, offset: int = 0) -> list[dict[str, Any]]:
        """Dead letters: changes given up on, oldest first."""
        with self.db.read() as s:
            rows = s.scalars(
                select(SinkOutboxRow)
                .where(SinkOutboxRow.sink_id == sink_id, SinkOutboxRow.state == DEAD)
                .order_by(SinkOutboxRow.updated, SinkOutboxRow.id)
                .limit(limit)
                .offset(offset)
            ).all()
            return [
                {
                    "key": r.key,
                    "status": r.status,
                    "version": r.version,
                    "last_modified": r.changed,
                    "attempts": r.attempts,
                    "error": r.last_error,
                    "updated": r.updated.isoformat(),
                }
                for r in rows
            ]

    def requeue(self, sink_id: int, keys: Sequence[str] | None = None) -> int:
        """Dead letters (all, or the given keys) go back to pending with fresh attempts."""
        now = utcnow()
        with self.db.session() as s:
            stmt = update(SinkOutboxRow).where(
                SinkOutboxRow.sink_id == sink_id, SinkOutboxRow.state == DEAD
            )
            if keys:
                stmt = stmt.where(SinkOutboxRow.key.in_(list(keys)))
            return rowcount(
                s.execute(
                    stmt.values(
                        state=PENDING, attempts=0, next_attempt=now, last_error="", updated=now
                    )
                )
            )

    def outbox(self, sink_id: int) -> list[dict[str, Any]]:
        """Every outbox row (tests and debugging)."""
        with self.db.read() as s:
            return [
                {
                    "key": r.key,
                    "state": r.state,
                    "status": r.status,
                    "version": r.version,
                    "delivered_version": r.delivered_version,
                    "attempts": r.attempts,
                    "error": r.last_error,
                }
                for r in s.scalars(
                    select(SinkOutboxRow)
                    .where(SinkOutboxRow.sink_id == sink_id)
                    .order_by(SinkOutboxRow.id)
                )
            ]
