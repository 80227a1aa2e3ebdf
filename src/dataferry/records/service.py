"""The records service: the one API every front door (REST, CLI, RPC, sinks,
replication) uses for collections, records, the change feed and applying
replicated changes. See ``docs/replication.md`` ("Python service API")."""

from __future__ import annotations

import builtins
import hashlib
import logging
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jsonschema
import jsonschema.exceptions

from dataferry.config import RecordSettings
from dataferry.db.base import utcnow
from dataferry.db.engine import Database
from dataferry.errors import Conflict, InvalidRequest, NotFound
from dataferry.records import gcpause, hlc, merge
from dataferry.records.model import (
    ApplyResult,
    ChangePage,
    Collection,
    Record,
    check_collection,
    check_json,
    check_origin,
    check_uuid,
    dumps,
    is_origin,
    loads,
    may_nest_too_deep,
    new_uuid,
)
from dataferry.records.store import RecordStore, StoredRow

log = logging.getLogger(__name__)

MAX_PAGE = 10000
# The replication protocol this instance speaks, and the older ones it still serves
# (version 1 sent a stamp per field; 2 sends the stamp most fields share once).
PROTOCOL = 2
PROTOCOLS = (1, 2)

Listener = Callable[[str, int], None]
_Values = list[dict[str, Any]]


def state_of(row: StoredRow) -> merge.State:
    return merge.decode(loads(row.meta), loads(row.data))


def record_of(row: StoredRow) -> Record:
    return Record(
        collection=row.collection,
        uuid=row.uuid,
        origin=row.origin,
        hlc=row.hlc,
        deleted=row.deleted,
        data=loads(row.data),
        seq=row.seq,
        updated=row.updated,
    )


def _row_values(
    collection: str, uuid: str, origin: str, state: merge.State, seq: int, via: str
) -> dict[str, Any]:
    return {
        "collection": collection,
        "uuid": uuid,
        "origin": origin,
        "hlc": state.last()[0],
        "deleted": state.deleted,
        "data": dumps(state.data()),
        "meta": dumps(merge.encode_meta(state)),
        "seq": seq,
        "via": via,
        "updated": utcnow(),
    }


def _conflict_values(collection: str, uuid: str, c: merge.Conflict, source: str) -> dict[str, Any]:
    return {
        "collection": collection,
        "uuid": uuid,
        "kind": c.kind,
        "field": c.field,
        "lost": dumps(c.lost),
        "lost_hlc": c.lost_stamp[0],
        "lost_origin": c.lost_stamp[1],
        "won": dumps(c.won),
        "won_hlc": c.won_stamp[0],
        "won_origin": c.won_stamp[1],
        "source": source,
        "at": utcnow(),
    }


class RecordService:
    """Collections of JSON records with a change feed; see the module docstring."""

    def __init__(self, db: Database, settings: RecordSettings) -> None:
        self.db = db
        self.settings = settings
        self.store = RecordStore(db)
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()
        self._instance = ""
        self._validators: dict[str, tuple[str, Any]] = {}

    # -- identity -------------------------------------------------------------------
    @property
    def instance_id(self) -> str:
        """This instance's stable id (created by ``init-db``)."""
        if not self._instance:
            self._instance = self.store.meta_value("instance_id", create=True)
        return self._instance

    @property
    def epoch(self) -> str:
        """Changes whenever this database is created anew."""
        return self.store.meta_value("records_epoch", create=True)

    # -- change notification ----------------------------------------------------------
    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(collection, seq)`` after each committed change to a
        collection (in the writer's thread; keep it quick). Returns an unsubscribe."""
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    def _notify(self, collection: str, seq: int) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for fn in listeners:
            try:
                fn(collection, seq)
            except Exception:
                log.exception("records listener %r failed", fn)

    # -- collections --------------------------------------------------------------------
    def create_collection(self, name: str, schema: Mapping[str, Any] | None = None) -> Collection:
        """Create a collection (idempotent); with ``schema``, set its JSON Schema."""
        check_collection(name)
        if schema is not None:
            self._check_schema(schema)
        with self.db.session() as s:
            row = self.store.ensure_collection(s, name)
            if schema is not None:
                row.schema = dumps(schema)
        return self.collection(name)

    def set_schema(self, name: str, schema: Mapping[str, Any] | None) -> Collection:
        """Set (or with None, drop) a collection's JSON Schema; existing records stay."""
        self._check_schema(schema) if schema is not None else None
        with self.db.session() as s:
            row = self._collection_row(s, name)
            row.schema = dumps(schema) if schema is not None else ""
        return self.collection(name)

    def collection(self, name: str) -> Collection:
        with self.db.read() as s:
            row = self._collection_row(s, name)
            alive, dead, head = self.store.counts(s, name)
            return Collection(
                row.name, loads(row.schema) if row.schema else None, row.created, alive, dead, head
            )

    def collections(self) -> list[Collection]:
        with self.db.read() as s:
            out = []
            for row in self.store.collections(s):
                alive, dead, head = self.store.counts(s, row.name)
                out.append(
                    Collection(
                        row.name,
                        loads(row.schema) if row.schema else None,
                        row.created,
                        alive,
                        dead,
                        head,
                    )
                )
            return out

    def collection_names(self) -> builtins.list[str]:
        """Names only (cheap: no counting)."""
        with self.db.read() as s:
            return [row.name for row in self.store.collections(s)]

    def has_collection(self, name: str) -> bool:
        check_collection(name)
        with self.db.read() as s:
            return self.store.collection(s, name) is not None

    def _collection_row(self, s: Any, name: str) -> Any:
        check_collection(name)
        row = self.store.collection(s, name)
        if row is None:
            raise NotFound(f"collection {name!r} does not exist")
        return row

    @staticmethod
    def _check_schema(schema: Mapping[str, Any]) -> None:
        if not isinstance(schema, Mapping):
            raise InvalidRequest("a JSON Schema must be a JSON object")
        check_json(schema, "the JSON Schema")
        try:
            jsonschema.validators.validator_for(schema).check_schema(dict(schema))
        except jsonschema.exceptions.SchemaError as exc:
            raise InvalidRequest(f"invalid JSON Schema: {exc.message}") from None

    def _validator(self, schema_text: str) -> Any:
        if not schema_text:
            return None
        cached = self._validators.get(schema_text)
        if cached is None:
            schema = loads(schema_text)
            cached = (schema_text, jsonschema.validators.validator_for(schema)(schema))
            if len(self._validators) > 100:
                self._validators.clear()
            self._validators[schema_text] = cached
        return cached[1]

    @staticmethod
    def _validate(validator: Any, data: Any, what: str) -> None:
        if not isinstance(data, dict):
            raise InvalidRequest(f"{what}: a record must be a JSON object")
        check_json(data, what)
        if validator is None:
            return
        error = jsonschema.exceptions.best_match(validator.iter_errors(data))
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
            raise InvalidRequest(
                f"{what} does not match the collection's schema at {where}: {error.message}"
            )

    # -- records ------------------------------------------------------------------------
    def put(self, collection: str, data: Mapping[str, Any], uuid: str | None = None) -> Record:
        """Create or replace a record's document (a UUID is generated when none is given).
        Only changed fields get a new stamp. Creates the collection if it is new."""
        return self.put_many(collection, [(uuid, data)])[0]

    def put_many(
        self, collection: str, items: Sequence[tuple[str | None, Mapping[str, Any]]]
    ) -> list[Record]:
        """``put`` for many records in one transaction (all or nothing)."""
        check_collection(collection)
        prepared = [(check_uuid(u) if u else new_uuid(), d) for u, d in items]
        if len({u for u, _ in prepared}) != len(prepared):
            raise InvalidRequest("the same UUID appears twice in one write")
        me = self.instance_id
        with self.db.session() as s:
            row = self.store.ensure_collection(s, collection)
            validator = self._validator(row.schema)
            for uuid, data in prepared:
                self._validate(validator, data, f"record {uuid}")
            clock = self.store.lock_clock(s)
            existing = self.store.get_many(s, collection, [u for u, _ in prepared])
            inserts: _Values = []
            updates: _Values = []
            out_rows: list[StoredRow] = []
            now = utcnow()
            for uuid, data in prepared:
                old = existing.get(uuid)
                if old is None:  # new: every field gets the same stamp
                    if not data:
                        raise InvalidRequest(
                            f"record {uuid}: a new record needs at least one field"
                        )
                    stamp = clock.stamp()
                    values: dict[str, Any] = {
                        "collection": collection,
                        "uuid": uuid,
                        "origin": me,
                        "hlc": stamp,
                        "deleted": False,
                        "data": dumps(data),
                        "meta": dumps({"s": [stamp, me]}),  # = merge.encode_meta
                        "seq": clock.next_seq(),
                        "via": "",
                        "updated": now,
                    }
                    inserts.append(values)
                    out_rows.append(StoredRow(**values))
                    continue
                current = state_of(old)
                new = merge.put(current, dict(data), (clock.stamp(), me))
                if new is None:
                    assert old is not None
                    out_rows.append(old)
                    continue
                values = _row_values(collection, uuid, old.origin, new, clock.next_seq(), "")
                updates.append(values)
                out_rows.append(StoredRow(**values))
            self.store.write(s, inserts, updates)
            self.store.save_clock(s, clock)
            seq = clock.seq
        if inserts or updates:
            self._notify(collection, seq)
        return [record_of(r) for r in out_rows]

    def delete(self, collection: str, uuid: str) -> Record:
        """Delete a record, keeping a tombstone (hidden from normal reads)."""
        check_collection(collection)
        uuid = check_uuid(uuid)
        with self.db.session() as s:
            self._collection_row(s, collection)
            old = self.store.get(s, collection, uuid)
            if old is None:
                raise NotFound(f"record {uuid} does not exist in {collection!r}")
            clock = self.store.lock_clock(s)
            new = merge.delete(state_of(old), (clock.stamp(), self.instance_id))
            if new is None:
                return record_of(old)
            values = _row_values(collection, uuid, old.origin, new, clock.next_seq(), "")
            self.store.write(s, [], [values])
            self.store.save_clock(s, clock)
        self._notify(collection, values["seq"])
        return record_of(StoredRow(**values))

    def get(self, collection: str, uuid: str, include_deleted: bool = False) -> Record:
        uuid = check_uuid(uuid)
        with self.db.read() as s:
            self._collection_row(s, collection)
            row = self.store.get(s, collection, uuid)
        if row is None or (row.deleted and not include_deleted):
            raise NotFound(f"record {uuid} does not exist in {collection!r}")
        return record_of(row)

    def list(
        self, collection: str, include_deleted: bool = False, limit: int = 100, offset: int = 0
    ) -> tuple[builtins.list[Record], int]:
        """A page of records ordered by UUID, and the total."""
        _check_page(limit, offset)
        with self.db.read() as s:
            self._collection_row(s, collection)
            rows, total = self.store.page(s, collection, include_deleted, limit, offset)
        return [record_of(r) for r in rows], total

    def changes(self, collection: str, since: int = 0, limit: int = 100) -> ChangePage:
        """Changes after ``since`` in commit order, tombstones included. Each record
        appears once, at its latest change; pass the returned cursor as ``since``."""
        _check_page(limit, 0)
        if since < 0:
            raise InvalidRequest("since must not be negative")
        with self.db.read() as s:
            self._collection_row(s, collection)
            rows = self.store.feed(s, collection, since, limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        cursor = rows[-1].seq if rows else since
        return ChangePage(collection, [record_of(r) for r in rows], cursor, more)

    def conflicts(
        self, collection: str, uuid: str | None = None, limit: int = 100, offset: int = 0
    ) -> _Values:
        """The conflict log, newest first: values that lost to concurrent ones."""
        _check_page(limit, offset)
        with self.db.read() as s:
            self._collection_row(s, collection)
            rows = self.store.conflicts(
                s, collection, check_uuid(uuid) if uuid else None, limit, offset
            )
            return [
                {
                    "id": r.id,
                    "collection": r.collection,
                    "uuid": r.uuid,
                    "kind": r.kind,
                    "field": r.field,
                    "lost": loads(r.lost),
                    "lost_hlc": r.lost_hlc,
                    "lost_origin": r.lost_origin,
                    "won": loads(r.won),
                    "won_hlc": r.won_hlc,
                    "won_origin": r.won_origin,
                    "source": r.source,
                    "at": r.at.isoformat(),
                }
                for r in rows
            ]

    def iter_rows(
        self, collection: str, since: int | None = None, until: int | None = None
    ) -> Iterator[Record]:
        """Every record (tombstones too) whose last change stamp is in [since, until)."""
        with self.db.read() as s:
            self._collection_row(s, collection)
        after = 0
        while True:
            with self.db.read() as s:
                rows = self.store.between(s, collection, since, until, after, 1000)
            if not rows:
                return
            for r in rows:
                yield record_of(r)
            after = rows[-1].seq

    # -- replication: the receiving side --------------------------------------------------
    def checkpoint(self, collection: str, source: str) -> dict[str, Any]:
        """What this instance has received of ``source``'s feed for ``collection``."""
        check_collection(collection)
        with self.db.read() as s:
            row = self.store.checkpoint(s, collection, source)
            return {
                "collection": collection,
                "source": source,
                "epoch": row.epoch if row else "",
                "cursor": row.cursor if row else 0,
            }

    def checkpoints(self, collection: str | None = None) -> _Values:
        """The version vector: per collection and source instance, the highest
        contiguous sequence number received."""
        with self.db.read() as s:
            return [
                {
                    "collection": r.collection,
                    "source": r.source,
                    "epoch": r.epoch,
                    "cursor": r.cursor,
                    "updated": r.updated.isoformat(),
                }
                for r in self.store.checkpoints(s, collection)
            ]

    def apply(
        self,
        collection: str,
        changes: builtins.list[Mapping[str, Any]] | ParsedBatch,
        *,
        source: str,
        epoch: str = "",
        cursor_from: int | None = None,
        cursor_to: int | None = None,
    ) -> ApplyResult:
        """Merge a batch of a peer's record states, all or nothing.

        ``changes`` is the batch's list of changes, or that list already checked
        by :func:`parse_batch` (a receiver may parse the next batch while this
        one is written).

        With cursors, the batch covers ``source``'s feed from ``cursor_from``
        (exclusive) to ``cursor_to`` (inclusive): the checkpoint moves to
        ``cursor_to`` in the same transaction, a batch already covered is
        skipped, and a batch that would leave a gap is refused (409).
        """
        check_collection(collection)
        if not source or len(source) > 64:
            raise InvalidRequest("source must be a non-empty instance id")
        parsed = changes if isinstance(changes, ParsedBatch) else parse_batch(changes)
        with gcpause.paused():
            return self._apply(collection, parsed, source, epoch, cursor_from, cursor_to)

    def _apply(
        self,
        collection: str,
        parsed: ParsedBatch,
        source: str,
        epoch: str,
        cursor_from: int | None,
        cursor_to: int | None,
    ) -> ApplyResult:
        incoming, echoes = parsed.incoming, parsed.echoes
        top = max((inc.last[0] for inc in incoming.values()), default=0)
        if incoming:
            hlc.check_drift(top, self.store.wall(), int(self.settings.max_drift_seconds * 1000))
        tracked = cursor_from is not None and cursor_to is not None
        if tracked and (cursor_to < cursor_from or cursor_from < 0):  # type: ignore[operator]
            raise InvalidRequest("cursor_to must not be below cursor_from")
        n_changed = n_conflicts = 0
        with self.db.session() as s:
            self.store.ensure_collection(s, collection)
            have = 0
            if tracked:
                cp = self.store.checkpoint(s, collection, source)
                have = cp.cursor if cp else 0
                if cursor_to <= have and cursor_to > 0:  # type: ignore[operator]
                    return ApplyResult(len(incoming), 0, len(incoming), 0, have, duplicate=True)
                if cursor_from > have:  # type: ignore[operator]
                    raise Conflict(
                        f"batch starts after {cursor_from} but this instance has received "
                        f"{source}'s changes only up to {have}: a batch is missing; "
                        "send again from the checkpoint"
                    )
            need = self._unmatched(s, collection, echoes, incoming)
            if need:  # we lost states we once sent: nothing applied, ask for them
                return ApplyResult(len(incoming), 0, 0, 0, have if tracked else 0, need=need)
            clock = self.store.lock_clock(s)
            clock.seen(top)
            existing = self.store.get_many(s, collection, list(incoming))
            inserts: _Values = []
            updates: _Values = []
            conflict_rows: _Values = []
            now = utcnow()
            for uuid, inc in incoming.items():
                old = existing.get(uuid)
                if old is None:  # new here: store the state as received (already checked)
                    inserts.append(
                        {
                            "collection": collection,
                            "uuid": uuid,
                            "origin": inc.origin,
                            "hlc": inc.last[0],
                            "deleted": inc.deleted,
                            "data": inc.data_text,
                            "meta": inc.meta_text,
                            "seq": clock.next_seq(),
                            "via": source,
                            "updated": now,
                        }
                    )
                    continue
                mine = state_of(old)
                theirs = inc.decoded()
                merged, lost = merge.merge(mine, theirs)
                if merged == mine:
                    continue
                via = source if merged == theirs else ""
                values = _row_values(collection, uuid, old.origin, merged, clock.next_seq(), via)
                updates.append(values)
                conflict_rows.extend(_conflict_values(collection, uuid, c, source) for c in lost)
            self.store.write(s, inserts, updates)
            self.store.add_conflicts(s, conflict_rows, self.settings.conflict_log_max)
            n_changed, n_conflicts = len(inserts) + len(updates), len(conflict_rows)
            if tracked:
                self.store.set_checkpoint(s, collection, source, epoch, cursor_to)  # type: ignore[arg-type]
            self.store.save_clock(s, clock)
            seq = clock.seq
        if n_changed:
            self._notify(collection, seq)
        return ApplyResult(
            len(incoming),
            n_changed,
            len(incoming) - n_changed,
            n_conflicts,
            cursor_to if tracked else 0,  # type: ignore[arg-type]
        )

    def _unmatched(
        self, s: Any, collection: str, echoes: Mapping[str, str], incoming: Any
    ) -> builtins.list[str]:
        todo = [u for u in echoes if u not in incoming]
        if not todo:
            return []
        metas = self.store.metas(s, collection, todo)
        return [u for u in todo if u not in metas or digest(metas[u]) != echoes[u]]

    def unmatched_echoes(
        self, collection: str, changes: builtins.list[Any] | ParsedBatch
    ) -> builtins.list[str]:
        """UUIDs of echo stubs in ``changes`` whose state this instance does not hold
        (on a raw list, a cheap scan; ``apply`` validates everything)."""
        if isinstance(changes, ParsedBatch):
            echoes: Mapping[str, str] = changes.echoes
            full: Any = changes.incoming
        else:
            echoes = {
                str(c.get("uuid")): str(c["echo"])
                for c in changes
                if isinstance(c, Mapping) and "echo" in c
            }
            full = {
                str(c.get("uuid")) for c in changes if isinstance(c, Mapping) and "echo" not in c
            }
        if not echoes:
            return []
        with self.db.read() as s:
            if self.store.collection(s, collection) is None:
                return [u for u in echoes if u not in full]
            return self._unmatched(s, collection, echoes, full)

    def states(
        self, collection: str, uuids: builtins.list[str], protocol: int = PROTOCOL
    ) -> builtins.list[str]:
        """Full states of these records (raw JSON texts, for a peer that lost them)."""
        if len(uuids) > MAX_PAGE:
            raise InvalidRequest(f"at most {MAX_PAGE} uuids per fetch")
        wanted = [check_uuid(u) for u in uuids]
        with self.db.read() as s:
            self._collection_row(s, collection)
            rows = self.store.get_many(s, collection, wanted)
        return [
            f'{{"uuid":"{r.uuid}","origin":{dumps(r.origin)},"data":{r.data},'
            f'"meta":{meta_for(protocol, r.meta, r.data)}}}'
            for r in rows.values()
        ]

    # -- replication: the sending side -----------------------------------------------------
    def feed_batch(
        self,
        collection: str,
        since: int,
        *,
        requester: str = "",
        limit: int | None = None,
        max_bytes: int | None = None,
        protocol: int = PROTOCOL,
    ) -> tuple[dict[str, Any], builtins.list[str]]:
        """The next batch of this instance's feed for a peer: a header and the
        changes as raw JSON texts (no re-encoding of stored documents).

        States received from ``requester`` unchanged are not echoed back to it:
        they travel as stubs ``{"uuid", "echo": digest}``; the requester fetches
        the full state only if it no longer has exactly that state."""
        check_collection(collection)
        if since < 0:
            raise InvalidRequest("since must not be negative")
        limit = min(limit or self.settings.batch_records, MAX_PAGE)
        max_bytes = max_bytes or self.settings.batch_bytes
        out: builtins.list[str] = []
        size = echoes = 0
        cursor = since
        with self.db.read() as s, gcpause.paused():
            self._collection_row(s, collection)
            rows = self.store.feed_texts(s, collection, since, limit, requester)
            head = self.store.head(s, collection)
            origins: dict[str, str] = {}
            for uuid, origin, data, meta, seq, via in rows:
                cursor = seq
                if requester and via == requester:
                    # Not echoed back: a stub lets the requester check it still has this
                    # state (and fetch it if it lost it, e.g. restored from a backup).
                    # The state is as the requester sent it, in its protocol's form.
                    out.append(f'{{"uuid":"{uuid}","echo":"{digest(meta)}"}}')
                    echoes += 1
                    size += 80
                else:
                    meta = meta_for(protocol, meta, data)
                    quoted = origins.get(origin)
                    if quoted is None:
                        quoted = origins[origin] = dumps(origin)
                    out.append(f'{{"uuid":"{uuid}","origin":{quoted},"data":{data},"meta":{meta}}}')
                    size += len(data) + len(meta) + 80
                if size >= max_bytes:
                    break
        header = {
            "protocol": protocol,
            "collection": collection,
            "source": self.instance_id,
            "epoch": self.epoch,
            "since": since,
            "cursor": cursor,
            "head": head,
            "more": cursor < head,
            "states": len(out) - echoes,
            "echoes": echoes,
        }
        return header, out


def meta_for(protocol: int, meta: str, data: str) -> str:
    """A stored state's stamps (JSON text) in the form of ``protocol``."""
    if protocol == PROTOCOL:
        return meta
    return dumps(merge.encode_meta_v1(merge.decode(loads(meta), loads(data))))


def render_batch(header: Mapping[str, Any], changes: list[str]) -> bytes:
    """A feed batch as one JSON document: the header's keys plus ``changes``."""
    head = dumps(dict(header))
    return (head[:-1] + ',"changes":[' + ",".join(changes) + "]}").encode()


@dataclass(slots=True)
class Incoming:
    """One received record state, checked; decoded into a State only when needed.
    ``data_text`` and ``meta_text`` are the JSON texts stored for a new record."""

    origin: str
    data: dict[str, Any]
    meta: dict[str, Any]
    last: merge.Stamp
    deleted: bool
    state: merge.State | None = None
    data_text: str = ""
    meta_text: str = ""

    def decoded(self) -> merge.State:
        if self.state is None:
            self.state = merge.decode(self.meta, self.data)
        return self.state


def digest(meta_text: str) -> str:
    """Identifies a stored state (its stamps) in echo stubs."""
    return hashlib.blake2b(meta_text.encode(), digest_size=12).hexdigest()


@dataclass(slots=True)
class ParsedBatch:
    """A batch's changes, checked by :func:`parse_batch`: full states by uuid, and
    echo stubs (uuid -> digest)."""

    incoming: dict[str, Incoming]
    echoes: dict[str, str]


def parse_batch(changes: list[Mapping[str, Any]]) -> ParsedBatch:
    """Check a batch's changes (see :func:`parse_changes`); nothing is written."""
    echoes: dict[str, str] = {}
    with gcpause.paused():
        incoming = parse_changes(changes, echoes)
    return ParsedBatch(incoming, echoes)


def combine_batches(batches: list[ParsedBatch]) -> ParsedBatch:
    """Consecutive checked batches of one feed as one (applied in one transaction).
    A record in several of them is merged, as repeats within one batch are; a later
    echo stub of a record replaces an earlier one."""
    if len(batches) == 1:
        return batches[0]
    incoming: dict[str, Incoming] = {}
    echoes: dict[str, str] = {}
    with gcpause.paused():
        for b in batches:
            for uuid, inc in b.incoming.items():
                old = incoming.get(uuid)
                incoming[uuid] = inc if old is None else _merge_incoming(old, inc)
            echoes.update(b.echoes)
    return ParsedBatch(incoming, echoes)


def _merge_incoming(first: Incoming, then: Incoming) -> Incoming:
    state = merge.merge(first.decoded(), then.decoded())[0]
    data, meta = state.data(), merge.encode_meta(state)
    item = Incoming(then.origin, data, meta, state.last(), state.deleted, state)
    item.data_text = dumps(data)
    item.meta_text = dumps(meta)
    return item


def parse_changes(
    changes: list[Mapping[str, Any]], echoes: dict[str, str] | None = None
) -> dict[str, Incoming]:
    """Validate a batch's changes; the first bad one rejects the batch (nothing applied).
    Repeats of one uuid are merged. Echo stubs go into ``echoes`` (uuid -> digest)."""
    if not isinstance(changes, list):
        raise InvalidRequest("changes must be a list")
    out: dict[str, Incoming] = {}
    for i, c in enumerate(changes):
        if type(c) is not dict and not isinstance(c, Mapping):
            raise InvalidRequest(f"change {i}: must be an object")
        raw_uuid = c.get("uuid", "")
        try:
            uuid = raw_uuid if _is_canonical_uuid(raw_uuid) else check_uuid(raw_uuid)
        except InvalidRequest as exc:
            raise InvalidRequest(f"change {i}: {exc.message}") from None
        if "echo" in c:
            if not isinstance(c["echo"], str) or len(c) != 2:
                raise InvalidRequest(f"change {i} ({uuid}): an echo stub is uuid and echo only")
            if echoes is not None:
                echoes[uuid] = c["echo"]
            continue
        origin, data, meta = c.get("origin"), c.get("data"), c.get("meta")
        if not is_origin(origin):  # the f-string only when it is needed
            origin = check_origin(origin, f"change {i} ({uuid}): origin")
        if not isinstance(data, dict) or not isinstance(meta, dict):
            raise InvalidRequest(f"change {i} ({uuid}): data and meta must be objects")
        try:
            last, deleted = merge.inspect(meta, data)
        except (ValueError, TypeError) as exc:
            raise InvalidRequest(f"change {i} ({uuid}): {exc}") from None
        item = Incoming(origin, data, meta, last, deleted)
        item.data_text = dumps(data)
        # A peer's parser may accept what ours refuse: the limits of a local write (meta
        # holds only stamps, which merge.inspect has checked).
        if may_nest_too_deep(item.data_text):
            check_json(data, f"change {i} ({uuid}): data")
        if uuid in out:  # the merge writes the texts of the merged state
            item = _merge_incoming(out[uuid], item)
        else:
            item.meta_text = dumps(meta)
        out[uuid] = item
    return out


_CANONICAL_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$")


def _is_canonical_uuid(value: Any) -> bool:
    return isinstance(value, str) and _CANONICAL_UUID.fullmatch(value) is not None


def _check_page(limit: int, offset: int) -> None:
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidRequest(f"limit must be between 1 and {MAX_PAGE}")
    if offset < 0:
        raise InvalidRequest("offset must not be negative")
