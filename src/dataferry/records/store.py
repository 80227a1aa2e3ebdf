"""All SQL about records: collections, the clock row, record rows, the feed,
checkpoints, acknowledgements and the conflict log. Rules live in ``service``."""

from __future__ import annotations

import uuid as uuidlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dataferry.db.base import utcnow
from dataferry.db.engine import Database
from dataferry.db.models import (
    AckRow,
    CheckpointRow,
    ClockRow,
    CollectionRow,
    ConflictRow,
    MetaRow,
    RecordRow,
)
from dataferry.records import hlc

CHUNK = 500  # uuids per IN (...) query

_INSERT_COLUMNS = (
    "collection",
    "uuid",
    "origin",
    "hlc",
    "deleted",
    "data",
    "meta",
    "seq",
    "via",
    "updated",
)
# Positional placeholder per DB-API paramstyle (sqlite3: qmark; psycopg: pyformat,
# which takes %s with a tuple too).
_PLACEHOLDER = {"qmark": "?", "format": "%s", "pyformat": "%s"}


@dataclass(slots=True)
class Clock:
    """The locked clock row during one write transaction."""

    seq: int
    hlc: int
    now_ms: int

    def stamp(self) -> int:
        self.hlc = hlc.tick(self.hlc, self.now_ms)
        return self.hlc

    def next_seq(self) -> int:
        self.seq = hlc.tick(self.seq, self.now_ms)
        return self.seq

    def seen(self, stamp: int) -> None:
        self.hlc = hlc.receive(self.hlc, stamp)


@dataclass(frozen=True, slots=True)
class StoredRow:
    collection: str
    uuid: str
    origin: str
    hlc: int
    deleted: bool
    data: str
    meta: str
    seq: int
    via: str
    updated: datetime


_COLUMNS = (
    RecordRow.collection,
    RecordRow.uuid,
    RecordRow.origin,
    RecordRow.hlc,
    RecordRow.deleted,
    RecordRow.data,
    RecordRow.meta,
    RecordRow.seq,
    RecordRow.via,
    RecordRow.updated,
)


def _row(r: Any) -> StoredRow:
    return StoredRow(*r)


class RecordStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        # The wall clock the HLC follows (tests shift it to simulate clock skew).
        self.wall: Callable[[], int] = hlc.wall_ms

    # -- instance facts -----------------------------------------------------------
    def meta_value(self, key: str, create: bool = False) -> str:
        """A value of the ``meta`` table; with ``create``, a new random one if missing."""
        with self.db.read() as s:
            value = s.scalar(select(MetaRow.value).where(MetaRow.key == key))
        if value or not create:
            return value or ""
        try:
            with self.db.session() as s:
                s.add(MetaRow(key=key, value=str(uuidlib.uuid4())))
        except IntegrityError:
            pass  # another process created it first
        with self.db.read() as s:
            return s.scalar(select(MetaRow.value).where(MetaRow.key == key)) or ""

    # -- collections --------------------------------------------------------------
    def collection(self, s: Session, name: str) -> CollectionRow | None:
        return s.get(CollectionRow, name)

    def ensure_collection(self, s: Session, name: str) -> CollectionRow:
        row = s.get(CollectionRow, name)
        if row is None:
            row = CollectionRow(name=name, schema="", created=utcnow())
            s.add(row)
            s.flush()
        return row

    def collections(self, s: Session) -> list[CollectionRow]:
        return list(s.scalars(select(CollectionRow).order_by(CollectionRow.name)))

    def counts(self, s: Session, name: str) -> tuple[int, int, int]:
        """(records alive, tombstones, head seq) of one collection."""
        rows = s.execute(
            select(RecordRow.deleted, func.count())
            .where(RecordRow.collection == name)
            .group_by(RecordRow.deleted)
        ).all()
        by = {bool(d): int(n) for d, n in rows}
        return by.get(False, 0), by.get(True, 0), self.head(s, name)

    def head(self, s: Session, name: str) -> int:
        return int(
            s.scalar(select(func.max(RecordRow.seq)).where(RecordRow.collection == name)) or 0
        )

    # -- the clock ----------------------------------------------------------------
    def lock_clock(self, s: Session) -> Clock:
        row = s.execute(
            select(ClockRow.seq, ClockRow.hlc).where(ClockRow.id == 1).with_for_update()
        ).one()
        return Clock(int(row.seq), int(row.hlc), self.wall())

    def save_clock(self, s: Session, clock: Clock) -> None:
        s.execute(update(ClockRow).where(ClockRow.id == 1).values(seq=clock.seq, hlc=clock.hlc))

    def clock(self) -> tuple[int, int]:
        with self.db.read() as s:
            row = s.execute(select(ClockRow.seq, ClockRow.hlc).where(ClockRow.id == 1)).one()
            return int(row.seq), int(row.hlc)

    # -- record rows --------------------------------------------------------------
    def get(self, s: Session, collection: str, uuid: str) -> StoredRow | None:
        r = s.execute(
            select(*_COLUMNS).where(RecordRow.collection == collection, RecordRow.uuid == uuid)
        ).first()
        return _row(r) if r else None

    def get_many(self, s: Session, collection: str, uuids: Sequence[str]) -> dict[str, StoredRow]:
        out: dict[str, StoredRow] = {}
        for i in range(0, len(uuids), CHUNK):
            chunk = uuids[i : i + CHUNK]
            for r in s.execute(
                select(*_COLUMNS).where(
                    RecordRow.collection == collection, RecordRow.uuid.in_(chunk)
                )
            ):
                out[r.uuid] = _row(r)
        return out

    def metas(self, s: Session, collection: str, uuids: Sequence[str]) -> dict[str, str]:
        """The stored stamps (meta JSON text) of these records, by uuid (echo checks)."""
        out: dict[str, str] = {}
        for i in range(0, len(uuids), CHUNK):
            chunk = uuids[i : i + CHUNK]
            for u, meta in s.execute(
                select(RecordRow.uuid, RecordRow.meta).where(
                    RecordRow.collection == collection, RecordRow.uuid.in_(chunk)
                )
            ):
                out[u] = meta
        return out

    def write(
        self, s: Session, inserts: list[dict[str, Any]], updates: list[dict[str, Any]]
    ) -> None:
        """Executemany: one statement per kind for the whole batch."""
        if inserts:
            self._insert(s, inserts)
        if updates:
            s.execute(update(RecordRow), updates)

    @staticmethod
    def _insert(s: Session, rows: list[dict[str, Any]]) -> None:
        """One driver-level ``executemany`` of new rows.

        SQLAlchemy's Core executemany processes every parameter of every row in
        Python (a third of the cost of applying a replication batch); here the
        only values that need a conversion (the boolean and the timestamp) are
        converted once per distinct value, and the rows go to the driver as tuples."""
        conn = s.connection()
        dialect = conn.dialect
        mark = _PLACEHOLDER.get(dialect.paramstyle)
        if mark is None:  # a driver we have not met: let SQLAlchemy do it
            s.execute(insert(RecordRow.__table__), rows)  # type: ignore[arg-type]
            return
        procs = {c.name: c.type._cached_bind_processor(dialect) for c in RecordRow.__table__.c}
        sql = (
            f"INSERT INTO {RecordRow.__tablename__} ({', '.join(_INSERT_COLUMNS)}) "
            f"VALUES ({', '.join([mark] * len(_INSERT_COLUMNS))})"
        )
        flag: Callable[[Any], Any] = procs["deleted"] or bool
        flags = {True: flag(True), False: flag(False)}
        stamp: Callable[[Any], Any] = procs["updated"] or (lambda v: v)
        last_in: Any = None
        last_out: Any = None
        params: list[tuple[Any, ...]] = []
        for r in rows:
            updated = r["updated"]
            if updated is not last_in:
                last_in, last_out = updated, stamp(updated)
            params.append(
                (
                    r["collection"],
                    r["uuid"],
                    r["origin"],
                    r["hlc"],
                    flags[bool(r["deleted"])],
                    r["data"],
                    r["meta"],
                    r["seq"],
                    r["via"],
                    last_out,
                )
            )
        conn.exec_driver_sql(sql, params)

    def page(
        self,
        s: Session,
        collection: str,
        include_deleted: bool,
        limit: int,
        offset: int,
    ) -> tuple[list[StoredRow], int]:
        query = select(*_COLUMNS).where(RecordRow.collection == collection)
        count = (
            select(func.count()).select_from(RecordRow).where(RecordRow.collection == collection)
        )
        if not include_deleted:
            query = query.where(RecordRow.deleted.is_(False))
            count = count.where(RecordRow.deleted.is_(False))
        rows = s.execute(query.order_by(RecordRow.uuid).limit(limit).offset(offset)).all()
        return [_row(r) for r in rows], int(s.scalar(count) or 0)

    def feed_texts(
        self, s: Session, collection: str, since: int, limit: int, requester: str = ""
    ) -> Sequence[Any]:
        """``feed`` for the replication sender: (uuid, origin, data, meta, seq, via)
        of the rows changed after ``since``, as stored (nothing decoded). Rows that
        came from ``requester`` (sent back as echo stubs) come without their data."""
        data: Any = RecordRow.data
        if requester:
            data = case((RecordRow.via == requester, ""), else_=RecordRow.data)
        # On the session's connection (Core): the ORM's row handling cost more than
        # SQLite's reading of the rows.
        rows = s.connection().execute(
            select(
                RecordRow.uuid,
                RecordRow.origin,
                data,
                RecordRow.meta,
                RecordRow.seq,
                RecordRow.via,
            )
            .where(RecordRow.collection == collection, RecordRow.seq > since)
            .order_by(RecordRow.seq)
            .limit(limit)
        )
        return rows.all()

    def feed(self, s: Session, collection: str, since: int, limit: int) -> list[StoredRow]:
        """Rows changed after ``since``, in change order (uses the (collection, seq) index)."""
        rows = s.execute(
            select(*_COLUMNS)
            .where(RecordRow.collection == collection, RecordRow.seq > since)
            .order_by(RecordRow.seq)
            .limit(limit)
        ).all()
        return [_row(r) for r in rows]

    def between(
        self,
        s: Session,
        collection: str,
        since: int | None,
        until: int | None,
        after_seq: int,
        n: int,
    ) -> list[StoredRow]:
        """Rows whose last change stamp is in [since, until), in feed order (exports)."""
        query = select(*_COLUMNS).where(
            RecordRow.collection == collection, RecordRow.seq > after_seq
        )
        if since is not None:
            query = query.where(RecordRow.hlc >= since)
        if until is not None:
            query = query.where(RecordRow.hlc < until)
        return [_row(r) for r in s.execute(query.order_by(RecordRow.seq).limit(n)).all()]

    # -- checkpoints and acknowledgements ------------------------------------------
    def checkpoint(self, s: Session, collection: str, source: str) -> CheckpointRow | None:
        return s.get(CheckpointRow, (collection, source))

    def checkpoints(self, s: Session, collection: str | None = None) -> list[CheckpointRow]:
        query = select(CheckpointRow).order_by(CheckpointRow.collection, CheckpointRow.source)
        if collection is not None:
            query = query.where(CheckpointRow.collection == collection)
        return list(s.scalars(query))

    def set_checkpoint(
        self, s: Session, collection: str, source: str, epoch: str, cursor: int
    ) -> None:
        row = s.get(CheckpointRow, (collection, source))
        if row is None:
            s.add(
                CheckpointRow(
                    collection=collection,
                    source=source,
                    epoch=epoch,
                    cursor=cursor,
                    updated=utcnow(),
                )
            )
        else:
            row.epoch, row.cursor, row.updated = epoch, cursor, utcnow()

    def note_ack(self, collection: str, requester: str, cursor: int) -> int:
        """Record that ``requester`` has everything up to ``cursor``; returns the seq
        up to which echoes must be sent again (it went back: restored from backup)."""
        with self.db.session() as s:
            row = s.get(AckRow, (collection, requester))
            if row is None:
                s.add(
                    AckRow(collection=collection, requester=requester, acked=cursor, rewind_until=0)
                )
                return 0
            if cursor < row.acked:
                row.rewind_until = max(row.rewind_until, self.head(s, collection))
            row.acked = cursor
            return int(row.rewind_until)

    # -- conflict log ---------------------------------------------------------------
    def add_conflicts(self, s: Session, rows: list[dict[str, Any]], keep: int) -> None:
        if not rows:
            return
        s.execute(insert(ConflictRow), rows)
        collection = rows[0]["collection"]
        newest = s.scalar(
            select(func.max(ConflictRow.id)).where(ConflictRow.collection == collection)
        )
        count = s.scalar(
            select(func.count())
            .select_from(ConflictRow)
            .where(ConflictRow.collection == collection)
        )
        if newest is not None and count is not None and count > keep:
            cutoff = s.scalar(
                select(ConflictRow.id)
                .where(ConflictRow.collection == collection)
                .order_by(ConflictRow.id.desc())
                .offset(keep)
                .limit(1)
            )
            if cutoff is not None:
                s.execute(
                    delete(ConflictRow).where(
                        ConflictRow.collection == collection, ConflictRow.id <= cutoff
                    )
                )

    def conflicts(
        self, s: Session, collection: str, uuid: str | None, limit: int, offset: int
    ) -> list[ConflictRow]:
        query = select(ConflictRow).where(ConflictRow.collection == collection)
        if uuid:
            query = query.where(ConflictRow.uuid == uuid)
        return list(s.scalars(query.order_by(ConflictRow.id.desc()).limit(limit).offset(offset)))


def chunks(items: Iterable[Any], size: int) -> Iterable[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
