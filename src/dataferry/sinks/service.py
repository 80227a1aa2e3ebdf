"""Sink operations for every front door (REST, CLI, config file)."""

from __future__ import annotations

import builtins
import json
import logging
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from dataferry.endpoints.secrets import SecretBox
from dataferry.errors import Conflict, InvalidRequest
from dataferry.sinks import mapping, sharing
from dataferry.sinks.daemon import SinkDaemon
from dataferry.sinks.engine import (
    SinkEngine,
    spec_of,
    spec_problem,
    stored_column,
    stored_definition,
)
from dataferry.sinks.model import Stats
from dataferry.sinks.sources.table import safe_url
from dataferry.sinks.spec import SinkSpec, SourceSpec
from dataferry.sinks.store import ClaimTaken, SinkStore, StoredSink

log = logging.getLogger(__name__)


def parse_spec(data: dict[str, Any]) -> SinkSpec:
    """Validate a sink definition; errors name the field."""
    try:
        spec = SinkSpec.model_validate(data)
    except ValidationError as exc:
        raise InvalidRequest(f"invalid sink definition: {spec_problem(exc)}") from None
    mapping.validate(spec.mapping)
    return spec


def _split(spec: SinkSpec) -> tuple[dict[str, Any], dict[str, str]]:
    """The spec to store in clear, and the secrets to seal (api key, table URL)."""
    public = spec.model_dump(mode="json", exclude={"api_key"})
    secrets = {"api_key": spec.api_key} if spec.api_key else {}
    if spec.headers:  # they may carry credentials (Authorization: ...): sealed too
        secrets["headers"] = json.dumps(spec.headers)
        public["headers"] = dict.fromkeys(spec.headers, "(set)")
    if spec.source.table is not None:
        secrets["table_url"] = spec.source.table.url
        public["source"]["table"]["url"] = safe_url(spec.source.table.url)
    return public, secrets


def _source(data: Any) -> SourceSpec | None:
    """The source of a stored definition, or None if it is no longer valid."""
    try:
        return SourceSpec.model_validate(data)
    except ValidationError:
        return None


def _column(spec: SinkSpec) -> sharing.Column | None:
    table = spec.source.table
    return None if table is None else sharing.column(table.url, table.name, table.last_sync)


def _shared(other: str, spec: SinkSpec) -> Conflict:
    """The refusal of a table source whose last_sync column sink ``other`` sets."""
    table = spec.source.table
    assert table is not None
    return Conflict(
        f"sink {other!r} already reads table {table.name!r} of"
        f" {safe_url(table.url)} and sets its last_sync column"
        f" {table.last_sync!r}; two sinks cannot share one: the first to"
        " deliver a row marks it synced and the other never sends it. Give"
        " each sink its own last_sync column (add one to the table)"
    )


def _identity(source: SourceSpec | None) -> tuple[Any, ...] | None:
    """What a source's records and marks are: the collection, or the table's column as
    ``sharing.column`` compares it (not the URL as written, nor the row filter) with
    its key, modified and deleted columns. A change of these starts the sink afresh."""
    if source is None:
        return None
    if source.collection is not None:
        return ("collection", source.collection)
    t = source.table
    assert t is not None
    column = sharing.column(t.url, t.name, t.last_sync) or (t.url, t.name, t.last_sync)
    return ("table", column, t.key, t.modified, t.deleted)


def _merged_source(current: Any, changes: dict[str, Any]) -> Any:
    """A change of a table source's fields, merged into the current table source (its
    URL is sealed, so a caller cannot repeat it): ``{"table": {"last_sync": "b"}}``."""
    new = changes["source"]
    if (
        isinstance(new, dict)
        and set(new) == {"table"}
        and isinstance(new["table"], dict)
        and isinstance(current, dict)
        and isinstance(current.get("table"), dict)
    ):
        return {"table": {**current["table"], **new["table"]}}
    return new


class SinkService:
    def __init__(
        self, store: SinkStore, box: SecretBox, engine: SinkEngine, daemon: SinkDaemon
    ) -> None:
        self.store = store
        self.box = box
        self.engine = engine
        self.daemon = daemon

    # -- definitions ------------------------------------------------------------
    def check(self, spec: SinkSpec) -> None:
        """Refuse a source that does not exist or lacks the named columns."""
        src = self.engine.make_source(spec)
        try:
            src.check()
        finally:
            src.close()

    def refuse_shared_last_sync(self, spec: SinkSpec) -> None:
        """Refuse a table source whose ``last_sync`` column another sink sets: the
        first of the two to deliver a row marks it synced and the other never sends it.
        The URLs are compared by the database they reach, not as written. Two sinks
        stored at once both pass this; the claim stored with each (``sharing.claim``) stops
        the second in the database."""
        mine = _column(spec)
        if mine is None:
            return
        for other in self.store.all():
            if other.name == spec.name:
                continue
            if stored_column(other, self.box) == mine:
                raise _shared(other.name, spec)

    def add(self, data: dict[str, Any], origin: str = "api") -> dict[str, Any]:
        spec = parse_spec(data)
        self.refuse_shared_last_sync(spec)
        self.check(spec)
        public, secrets = _split(spec)
        try:
            stored = self.store.create(
                spec.name,
                public,
                self.box.seal(secrets),
                spec.url,
                spec.paused,
                origin,
                claim=sharing.claim(_column(spec)),
            )
        except ClaimTaken as exc:
            raise _shared(exc.other, spec) from None
        self.daemon.wake(spec.name)
        return self.document(stored)

    def update(self, name: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Change fields of a sink (e.g. set its URL once the partner's service exists)."""
        stored = self.store.get(name)
        # Not validated on its own: a row an older version wrote may hold a value now
        # refused. The result of the change is validated as a whole, so a change that
        # mends such a value is taken, and one that leaves it is a 422 naming it.
        current = {
            k: v
            for k, v in stored_definition(stored, self.box).items()
            if k in SinkSpec.model_fields  # a field no longer known is dropped
        }
        if "name" in changes and changes["name"] != name:
            raise InvalidRequest("a sink cannot be renamed; remove it and add it again")
        if "api_key" in changes and changes["api_key"] is None:
            changes = {k: v for k, v in changes.items() if k != "api_key"}
        if "source" in changes:
            changes = {**changes, "source": _merged_source(current.get("source"), changes)}
        spec = parse_spec({**current, **changes})
        if "source" in changes:
            self.refuse_shared_last_sync(spec)
            self.check(spec)
        public, secrets = _split(spec)
        extra: dict[str, Any] = {}
        if _identity(spec.source) != _identity(_source(current.get("source"))):
            # Another table, column or collection: what the outbox says was delivered
            # or is pending is about the old source's records (its marks would be
            # written into the new one): forgotten, and the new one read from its start.
            extra["cursor"] = 0
            extra["forget_outbox"] = True
        if "source" in changes:
            extra["last_sync_claim"] = sharing.claim(_column(spec))
        try:
            updated = self.store.update(
                name,
                spec=public,
                secrets=self.box.seal(secrets),
                url=spec.url,
                paused=spec.paused,
                **extra,
            )
        except ClaimTaken as exc:
            raise _shared(exc.other, spec) from None
        self._sweep_after_change(stored, updated)
        self.daemon.wake(name)
        return self.document(updated)

    def _sweep_after_change(self, before: StoredSink, after: StoredSink | None) -> None:
        """A sink's source changed (another ``where``, table or column) or the sink
        is gone: deleted rows it held on its old table, or that its new row filter
        leaves out, may now be settled. Swept at once, not at the next poll of a sink
        reading the table; on both tables if it moved."""
        if after is not None and after.spec.get("source") == before.spec.get("source"):
            return  # what a sink holds depends on its source alone
        columns = [stored_column(before, self.box)]
        if after is not None:
            columns.append(stored_column(after, self.box))
        self.engine.sweep_tables(columns)

    def list(self) -> list[dict[str, Any]]:
        every = self.store.all()
        shadowed = self.engine.shadowed(every)
        return [self.document(s, counts=True, shadowed=shadowed) for s in every]

    def get(self, name: str) -> dict[str, Any]:
        return self.document(self.store.get(name), counts=True)

    def remove(self, name: str) -> None:
        stored = self.store.get(name)
        self.store.remove(name)
        self.engine.forget(stored.id)
        self._sweep_after_change(stored, None)

    def pause(self, name: str) -> dict[str, Any]:
        stored = self.store.get(name)
        spec = {**stored.spec, "paused": True}
        return self.document(self.store.update(name, paused=True, spec=spec))

    def resume(self, name: str) -> dict[str, Any]:
        stored = self.store.get(name)
        spec = {**stored.spec, "paused": False}
        doc = self.document(self.store.update(name, paused=False, spec=spec))
        self.daemon.wake(name)
        return doc

    # -- dead letters -----------------------------------------------------------
    def failures(
        self, name: str, limit: int = 1000, offset: int = 0
    ) -> builtins.list[dict[str, Any]]:
        return self.store.failures(self.store.get(name).id, limit, offset)

    def retry(self, name: str, keys: Sequence[str] | None = None) -> int:
        """Re-queue dead letters (all, or those of ``keys``); returns how many."""
        n = self.store.requeue(self.store.get(name).id, keys)
        self.daemon.wake(name)
        return n

    # -- running ----------------------------------------------------------------
    def run_once(self, name: str) -> Stats:
        """Poll and send everything due now, in this thread (tests, ``sink run``)."""
        return self.engine.run_once(self.store.get(name))

    def wake(self, name: str | None = None) -> None:
        self.daemon.wake(name)

    def sync_config(self, specs: Sequence[SinkSpec]) -> None:
        """Create or update the sinks defined in the config file; remove config-defined
        sinks no longer there. Sinks added over the API are left alone."""
        names = {s.name for s in specs}
        for spec in specs:
            data = spec.model_dump(mode="json")
            try:
                existing = self.store.find(spec.name)
                if existing is None:
                    self.add(data, origin="config")
                    continue
                if existing.origin != "config":
                    log.warning(
                        "sink %s from the config file exists already (added via the API)"
                        "; the config entry is ignored",
                        spec.name,
                    )
                    continue
                try:
                    same = spec_of(existing, self.box) == spec
                except InvalidRequest:  # stored by an older version, now invalid
                    same = False
                if not same:
                    self.refuse_shared_last_sync(spec)
                    public, secrets = _split(parse_spec(data))
                    extra: dict[str, Any] = {}
                    before = _source(stored_definition(existing, self.box).get("source"))
                    if _identity(spec.source) != _identity(before):
                        extra = {"cursor": 0, "forget_outbox": True}  # as in update()
                    try:
                        updated = self.store.update(
                            spec.name,
                            spec=public,
                            secrets=self.box.seal(secrets),
                            url=spec.url,
                            paused=spec.paused,
                            last_sync_claim=sharing.claim(_column(spec)),
                            **extra,
                        )
                    except ClaimTaken as exc:
                        raise _shared(exc.other, spec) from None
                    self._sweep_after_change(existing, updated)
            except Exception as exc:
                log.error("sink %s from the config file cannot be set up: %s", spec.name, exc)
        for stored in self.store.all():
            if stored.origin == "config" and stored.name not in names:
                self.remove(stored.name)

    # -- documents --------------------------------------------------------------
    def problem(self, stored: StoredSink) -> str:
        """Why a stored definition is no longer valid (an older version wrote it), or
        "". The daemon does not run such a sink; the document says why."""
        try:
            SinkSpec.model_validate(stored_definition(stored, self.box))
        except ValidationError as exc:
            return spec_problem(exc)
        return ""

    def document(
        self, stored: StoredSink, counts: bool = False, shadowed: dict[int, str] | None = None
    ) -> dict[str, Any]:
        spec = dict(stored.spec)
        secrets = self.box.open(stored.secrets)
        if shadowed is None:
            shadowed = self.engine.shadowed(self.store.all())
        # A paused sink that could not run says why: resuming it would not deliver.
        if problem := self.problem(stored):
            idle_reason = f"definition no longer valid, change it: {problem}"
        elif other := shadowed.get(stored.id):
            idle_reason = sharing.shadowed_reason(other)
        elif stored.paused:
            idle_reason = "paused"
        elif not stored.url:
            idle_reason = "no target URL configured"
        else:
            idle_reason = ""
        doc: dict[str, Any] = {
            "name": stored.name,
            "source": spec.get("source"),
            "url": stored.url,
            "headers": spec.get("headers", {}),
            "api_key": "(set)" if secrets.get("api_key") else "",
            "mapping": spec.get("mapping"),
            "poll_interval": spec.get("poll_interval"),
            "retry_interval": spec.get("retry_interval"),
            "retry_cap": spec.get("retry_cap"),
            "give_up_after": spec.get("give_up_after"),
            "concurrency": spec.get("concurrency"),
            "timeout": spec.get("timeout"),
            "accept": spec.get("accept"),
            "paused": stored.paused,
            "origin": stored.origin,
            "state": "paused" if stored.paused else ("idle" if idle_reason else "active"),
            "idle_reason": idle_reason,
            "last_poll": stored.last_poll.isoformat() if stored.last_poll else None,
            "last_delivered": stored.last_delivered.isoformat() if stored.last_delivered else None,
            "last_error": stored.last_error,
            "delivered_total": stored.delivered_total,
            "failed_total": stored.failed_total,
            "created": stored.created.isoformat(),
            "updated": stored.updated.isoformat(),
        }
        if counts:
            doc["changes"] = self.store.counts(stored.id)
        return doc
