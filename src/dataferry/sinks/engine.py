"""The delivery engine's steps: poll a source into the outbox, claim due changes,
send them, record the outcomes. The daemon (``sinks.daemon``) runs these steps
continuously; ``run_once`` runs them to quiescence for tests and the CLI.

Crash safety: the outbox row of a change is leased while it is sent. If the process
dies between the partner's 200 and the mark, the lease expires and the change is
sent again with the same ``Idempotency-Key``; nothing is lost. For a table source the
table is marked first, then the outbox, so a crash in between only causes the
outbox to catch up on the next poll. A deletion goes the other way: its outcome is
recorded in the outbox first, and the row removed after (``sinks.sweep``), once every
sink reading the table has one; a crash in between leaves it to the next poll's sweep.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import httpx
from pydantic import ValidationError

from dataferry.endpoints.secrets import SecretBox
from dataferry.errors import DataferryError, InvalidRequest
from dataferry.jobs.backoff import backoff_delay
from dataferry.jobs.executor import claim_owner
from dataferry.sinks import delivery, mapping, sharing, sweep
from dataferry.sinks.model import Claimed, Outcome, Sink, Stats, idempotency_key
from dataferry.sinks.sources import Source
from dataferry.sinks.sources.table import TableSource
from dataferry.sinks.spec import SinkSettings, SinkSpec
from dataferry.sinks.store import Failure, SinkStore, StoredSink, Superseded

log = logging.getLogger(__name__)

# A factory for collection sources (installed by the records capability when present).
CollectionSourceFactory = Callable[[str], Source]


def stored_definition(stored: StoredSink, box: SecretBox) -> dict[str, Any]:
    """The definition of a stored sink as data, secrets opened in memory, not validated:
    a row written by an older version may hold values now refused (see ``spec_of``)."""
    secrets = box.open(stored.secrets)
    data: dict[str, Any] = dict(stored.spec)
    data["api_key"] = secrets.get("api_key", "")
    data["headers"] = json.loads(secrets["headers"]) if secrets.get("headers") else {}
    source = data.get("source")
    if isinstance(source, dict):
        source = dict(source)
        if isinstance(source.get("table"), dict):
            source["table"] = {**source["table"], "url": secrets.get("table_url", "")}
        data["source"] = source
    return data


def stored_column(stored: StoredSink, box: SecretBox) -> sharing.Column | None:
    """The last_sync column a stored sink sets (``sharing.column``), or None: not a
    table source, or its secrets cannot be opened (the secret key changed)."""
    return stored_reading(stored, box)[0]


def stored_reading(stored: StoredSink, box: SecretBox) -> tuple[sharing.Column | None, str]:
    """:func:`stored_column` and the table source's row filter ("" for none)."""
    try:
        source = stored_definition(stored, box).get("source")
    except (DataferryError, ValueError):
        return None, ""
    table = source.get("table") if isinstance(source, dict) else None
    where = table.get("where") if isinstance(table, dict) else None
    return sharing.column_of(source), where if isinstance(where, str) else ""


def spec_problem(exc: ValidationError) -> str:
    """What is wrong with a definition, each field named: ``timeout: Input should ...``."""
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'sink'}: {e['msg']}" for e in exc.errors()
    )


def spec_of(stored: StoredSink, box: SecretBox) -> SinkSpec:
    """The full spec of a stored sink, secrets opened in memory. InvalidRequest if the
    stored definition is no longer valid (written by an older, laxer version)."""
    try:
        return SinkSpec.model_validate(stored_definition(stored, box))
    except ValidationError as exc:
        raise InvalidRequest(
            f"sink {stored.name!r}: its stored definition is no longer valid: "
            f"{spec_problem(exc)}; change it (sink set, PATCH) or remove it"
        ) from None


class SinkEngine:
    def __init__(
        self,
        store: SinkStore,
        box: SecretBox,
        node: str,
        settings: SinkSettings,
    ) -> None:
        self.store = store
        self.box = box
        self.node = node
        self.settings = settings
        self.collections: CollectionSourceFactory | None = None
        self._sources: dict[int, tuple[Any, Source]] = {}
        # Per sink: (its ``updated``, the column it sets, its row filter).
        self._columns: dict[int, tuple[Any, sharing.Column | None, str]] = {}
        self._lock = threading.Lock()

    # -- sinks and sources ------------------------------------------------------
    def sink(self, stored: StoredSink) -> Sink:
        return Sink(
            id=stored.id,
            name=stored.name,
            spec=spec_of(stored, self.box),
            paused=stored.paused,
            origin=stored.origin,
            updated=stored.updated,
        )

    def shadowed(self, sinks: Sequence[StoredSink]) -> dict[int, str]:
        """Of ``sinks`` (all of them), those setting a last_sync column an older sink
        sets, each mapped to that sink's name (see ``sharing.shadowed``): not run."""
        reading = self._reading(sinks)
        return sharing.shadowed((s.id, s.name, reading[s.id][0]) for s in sinks)

    def _reading(self, sinks: Sequence[StoredSink]) -> dict[int, tuple[sharing.Column | None, str]]:
        """Of ``sinks`` (all of them), the column each sets and its row filter."""
        out = {}
        with self._lock:
            for s in sinks:
                cached = self._columns.get(s.id)
                if cached is None or cached[0] != s.updated:
                    cached = self._columns[s.id] = (s.updated, *stored_reading(s, self.box))
                out[s.id] = (cached[1], cached[2])
            for gone in set(self._columns) - {s.id for s in sinks}:
                del self._columns[gone]
        return out

    def readers(self, sink: Sink) -> dict[int, str]:
        """The sinks reading the table ``sink`` reads (itself included), each
        with its row filter: a deleted row is removed once each has an outcome for it.
        Tables are compared as ``sharing.column`` compares them (the database reached,
        not the URL as written). A sink not run because an older sink sets its column
        (``shadowed``) holds nothing: once given its own, empty column, it would drop
        every deleted row anyway. Empty if the sink is gone, or its definition changed
        since ``sink`` was read (its source may be another table now: the next poll
        sweeps with the new one)."""
        every = self.store.all()
        if not any(s.id == sink.id and s.updated == sink.updated for s in every):
            return {}
        reading = self._reading(every)
        column, where = reading[sink.id]
        table = sharing.table_of(column)
        if table is None:  # a private database: nobody else reads it
            return {sink.id: where}
        shadowed = self.shadowed(every)
        return {
            i: w
            for i, (col, w) in reading.items()
            if sharing.table_of(col) == table and i not in shadowed
        }

    def sweep(self, sink: Sink, keys: Iterable[str] | None = None) -> int:
        """Remove the deleted rows of the sink's table (of ``keys``, or all) that every
        sink reading it has delivered or dropped (``sinks.sweep``). A failure is only
        logged: the outcomes are recorded, and the next poll sweeps again."""
        src = self.source(sink)
        if not isinstance(src, TableSource):
            return 0
        try:
            return sweep.sweep(self.store, src, self.readers(sink), keys)
        except DataferryError as exc:
            log.warning("sink %s: removing deleted rows failed: %s", sink.name, exc.message)
            return 0

    def sweep_tables(self, columns: Iterable[sharing.Column | None]) -> None:
        """Sweep now the tables of ``columns`` (``sharing.column``; None is skipped),
        each through a sink reading it. A sink whose definition changed (another row
        filter, another source) or that was removed may no longer hold deleted rows it
        held: without this they would wait for the next poll of a sink on the table."""
        tables = {t for c in columns if (t := sharing.table_of(c)) is not None}
        if not tables:
            return
        every = self.store.all()
        reading = self._reading(every)
        shadowed = self.shadowed(every)
        for stored in every:
            table = sharing.table_of(reading[stored.id][0])
            if table not in tables or stored.id in shadowed:
                continue
            try:
                sink = self.sink(stored)
            except DataferryError:
                # A definition no longer valid (or sealed under another key) is not
                # run: another reader sweeps, or the next poll of one does.
                continue
            tables.discard(table)
            self.sweep(sink)  # a failure is logged: the change itself is stored

    def make_source(self, spec: SinkSpec) -> Source:
        if spec.source.table is not None:
            return TableSource(spec.source.table, spec.source.table.url)
        assert spec.source.collection is not None
        if self.collections is None:
            raise InvalidRequest(
                f"collection {spec.source.collection!r} cannot be a source: "
                "collections are not available in this installation"
            )
        return self.collections(spec.source.collection)

    def source(self, sink: Sink) -> Source:
        """The sink's source, reused while the sink's definition is unchanged."""
        with self._lock:
            cached = self._sources.get(sink.id)
            if cached is not None and cached[0] == sink.updated:
                return cached[1]
            if cached is not None:
                cached[1].close()
            src = self.make_source(sink.spec)
            self._sources[sink.id] = (sink.updated, src)
            return src

    def forget(self, sink_id: int) -> None:
        with self._lock:
            cached = self._sources.pop(sink_id, None)
        if cached is not None:
            cached[1].close()

    def close(self) -> None:
        with self._lock:
            sources, self._sources = list(self._sources.values()), {}
        for _, src in sources:
            src.close()

    def lease_seconds(self, sink: Sink) -> float:
        # Never shorter than a request can take, or a slow answer would be sent twice.
        return max(self.settings.lease_seconds, sink.spec.timeout * 2 + 1)

    # -- steps ------------------------------------------------------------------
    def poll(self, sink: Sink, stats: Stats | None = None) -> int:
        """Bring the source's pending changes into the outbox; returns how many were
        taken up (``Stats.polled``): not those the outbox knows already, nor drops."""
        owner = f"{self.node}/poll"
        cursor = self.store.take_poll(sink.id, owner, self.lease_seconds(sink))
        if cursor is None:
            return 0  # another process is polling this sink now
        count = 0
        error = ""
        try:
            src = self.source(sink)
            # A table's deleted rows wait for every sink reading it: outcomes are kept.
            track = isinstance(src, TableSource)
            deleted: set[str] = set()
            for changes, after in src.scan(cursor):
                recorded = self.store.record_changes(
                    sink.id, changes, after, sink.updated, track_deletions=track
                )
                if stats is not None:
                    stats.dropped += len(recorded.drops)
                # Not len(changes): a table's deleted rows waiting for another sink are
                # read again on every poll, but taken up only once.
                count += recorded.taken
                deleted.update(c.key for c in changes if c.status == "deleted")
            if track and deleted:
                # Every deleted row still in the table: dropped just now, waiting for
                # other sinks, held by a sink since removed, or left by a crash between
                # an outcome and the removal. Only these are looked up, not the outbox.
                self.sweep(sink, deleted)
        except Superseded:
            pass  # the definition changed: the next poll reads the new source
        except DataferryError as exc:
            error = f"poll failed: {exc.message}"
            log.warning("sink %s: %s", sink.name, error)
        except Exception as exc:
            error = f"poll failed: {type(exc).__name__}: {exc}"
            log.exception("sink %s: poll failed", sink.name)
        finally:
            self.store.end_poll(sink.id, owner, error)
        if stats is not None:
            stats.polled += count
            if error:
                stats.errors.append(error)
        return count

    def claim(self, sink: Sink, owner: str, limit: int) -> list[Claimed]:
        return self.store.claim(sink.id, owner, limit, self.lease_seconds(sink), sink.updated)

    def request(self, sink: Sink, c: Claimed) -> tuple[bytes, dict[str, str]]:
        """The body and headers of the request for change ``c``."""
        spec = sink.spec
        change = mapping.Change(c.key, c.status, c.changed, c.data)
        body = delivery.encode(mapping.document(change, spec.mapping, spec.api_key))
        headers = {k: v.replace("{api_key}", spec.api_key) for k, v in spec.headers.items()}
        headers["Idempotency-Key"] = idempotency_key(spec.source.label, c.key, c.version)
        return body, headers

    def send(self, sink: Sink, http: httpx.Client, c: Claimed) -> Outcome:
        try:
            body, headers = self.request(sink, c)
        except Exception as exc:
            # Building the request is pure: this change would fail the same way on
            # every attempt, so it is a dead letter at once (a newer change of the
            # record, or `sink retry` after fixing the mapping, sends it again).
            reason = (
                exc.message if isinstance(exc, DataferryError) else f"{type(exc).__name__}: {exc}"
            )
            return Outcome(False, None, f"cannot build the document: {reason}", permanent=True)
        return delivery.send(http, sink.spec.url, body, headers, sink.spec.accept)

    def complete(
        self,
        sink: Sink,
        owner: str,
        results: Sequence[tuple[Claimed, Outcome]],
        stats: Stats | None = None,
    ) -> None:
        ok = [c for c, o in results if o.ok]
        bad = [Failure(c, o.error, o.permanent) for c, o in results if not o.ok]
        # A table's deleted rows wait for every sink reading it: outcomes are kept.
        track = sink.spec.source.table is not None
        if ok:
            try:
                # New and modified rows are marked at the source first; deletions are
                # recorded in the outbox first, then swept (below).
                self.source(sink).delivered(ok)
            except DataferryError as exc:
                # Not marked at the source: keep them pending; they are re-sent with
                # the same idempotency key (the partner already has them).
                bad.extend(Failure(c, f"delivered, but {exc.message}") for c in ok)
                ok = []
        spec = sink.spec

        def delay(attempt: int) -> float:
            return backoff_delay(attempt, spec.retry_interval, spec.retry_cap)

        delivered, dead = self.store.complete(
            sink.id, owner, ok, bad, delay, spec.give_up_after, track_deletions=track
        )
        if track and (gone := [c.key for c in ok if c.status == "deleted"]):
            self.sweep(sink, gone)
        if stats is not None:
            stats.delivered += delivered
            stats.failed += len(bad)
            stats.dead += dead
        if dead:
            log.warning("sink %s: %d change(s) moved to the dead letters", sink.name, dead)

    def run_once(self, stored: StoredSink, *, poll: bool = True) -> Stats:
        """Poll once, then send every change that is due, one after another, until
        none is due (failures wait for their retry time). For tests and ``sink run``."""
        sink = self.sink(stored)
        stats = Stats()
        other = self.shadowed(self.store.all()).get(stored.id)
        idle_reason = sink.idle_reason or (sharing.shadowed_reason(other) if other else "")
        if idle_reason:
            stats.errors.append(f"idle: {idle_reason}")
            return stats
        if poll:
            self.poll(sink, stats)
        owner = claim_owner(self.node)
        with delivery.client(sink.spec.concurrency, sink.spec.timeout) as http:
            while True:
                batch = self.claim(sink, owner, 100)
                if not batch:
                    break
                results = [(c, self.send(sink, http, c)) for c in batch]
                self.complete(sink, owner, results, stats)
        return stats
