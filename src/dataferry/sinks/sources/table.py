"""A table in an application's own database as a sink source.

Rules (columns named by the sink's definition):

* a row is *new* when ``last_sync`` is null, *modified* when ``last_sync < modified``,
  *deleted* when ``deleted`` is not null;
* after the partner accepted a new or modified row, ``last_sync`` is set to the
  ``modified`` value that was sent (not "now": an edit made while the request was in
  flight has a later ``modified`` and is sent again), never to an older value;
* a deleted row is removed once every sink reading the table has an outcome for its
  deletion: delivered it, or dropped it without a request (that sink never sent the
  row); see ``sinks.sweep``. The removal is guarded: a row un-deleted or deleted
  again meanwhile stays.

Values are read and written back raw (no type conversion), so ``last_sync = modified``
compares equal whatever the column types are. The table's schema is never changed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, NoSuchTableError, SQLAlchemyError

from dataferry.errors import InvalidRequest, TransientError
from dataferry.sinks.mapping import jsonable
from dataferry.sinks.model import Claimed, SourceChange
from dataferry.sinks.spec import TableSource as TableSpec

BATCH = 1000


def encode_raw(value: Any) -> Any:
    """A raw database value as JSON that :func:`decode_raw` turns back into the same value."""
    if isinstance(value, dt.datetime):
        return {"$dt": value.isoformat()}
    if isinstance(value, dt.date):
        return {"$d": value.isoformat()}
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def decode_raw(value: Any) -> Any:
    if isinstance(value, dict):
        if "$dt" in value:
            return dt.datetime.fromisoformat(value["$dt"])
        if "$d" in value:
            return dt.date.fromisoformat(value["$d"])
    return value


def safe_url(url: str) -> str:
    """The URL with any password hidden (for documents and messages)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(unparseable URL)"


class TableSource:
    def __init__(self, spec: TableSpec, url: str) -> None:
        self.spec = spec
        self.url = url
        self.label = f"table:{spec.name}"
        self._engine: sa.Engine | None = None
        schema, _, name = spec.name.rpartition(".")
        self._schema = schema or None
        self._name = name
        self._table: sa.TableClause | None = None

    # -- connection -------------------------------------------------------------
    @property
    def engine(self) -> sa.Engine:
        if self._engine is None:
            try:
                parsed = make_url(self.url)
                if parsed.get_backend_name() == "sqlite":
                    self._engine = sa.create_engine(
                        parsed, connect_args={"timeout": 30, "check_same_thread": False}
                    )
                else:
                    self._engine = sa.create_engine(parsed, pool_pre_ping=True, pool_size=4)
            except (ArgumentError, NoSuchModuleError, ImportError) as exc:
                raise InvalidRequest(
                    f"table source URL {safe_url(self.url)!r} is not usable: {exc}"
                ) from exc
        return self._engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    @property
    def table(self) -> sa.TableClause:
        if self._table is None:
            s = self.spec
            # Untyped columns: values go out and come back exactly as the driver gives them.
            names = dict.fromkeys([s.key, s.modified, s.deleted, s.last_sync])
            self._table = sa.table(self._name, *(sa.column(n) for n in names), schema=self._schema)
        return self._table

    # -- validation -------------------------------------------------------------
    def check(self) -> None:
        s = self.spec
        try:
            inspector = sa.inspect(self.engine)
            try:
                columns = {
                    c["name"] for c in inspector.get_columns(self._name, schema=self._schema)
                }
            except NoSuchTableError:
                raise InvalidRequest(
                    f"table {s.name!r} does not exist in {safe_url(self.url)}"
                ) from None
        except SQLAlchemyError as exc:
            raise InvalidRequest(
                f"cannot read table {s.name!r} at {safe_url(self.url)}: {exc}"
            ) from exc
        except ValueError as exc:  # the driver's: a NUL or lone surrogate in a file name
            raise InvalidRequest(
                f"table source URL {safe_url(self.url)!r} is not usable: {exc}"
            ) from None
        wanted = {"key": s.key, "modified": s.modified, "deleted": s.deleted}
        wanted["last_sync"] = s.last_sync
        missing = [f"{role} column {col!r}" for role, col in wanted.items() if col not in columns]
        if missing:
            raise InvalidRequest(
                f"table {s.name!r} has no {', no '.join(missing)} "
                f"(its columns: {', '.join(sorted(columns))})"
            )
        if s.where:
            try:
                with self.engine.connect() as conn:
                    conn.execute(self._select().limit(0)).all()
            except SQLAlchemyError as exc:
                raise InvalidRequest(
                    f"row filter {s.where!r} is not valid SQL here: {exc}"
                ) from exc

    def _select(self) -> sa.Select[Any]:
        s = self.spec
        t = self.table
        last_sync, modified, deleted = t.c[s.last_sync], t.c[s.modified], t.c[s.deleted]
        query = sa.select(sa.text("*")).select_from(t)
        query = query.where(sa.or_(last_sync.is_(None), last_sync < modified, deleted.is_not(None)))
        if s.where:
            query = query.where(sa.text(f"({s.where})"))
        return query

    # -- reading ----------------------------------------------------------------
    def _change(self, row: dict[str, Any]) -> SourceChange:
        s = self.spec
        key = row[s.key]
        modified = row[s.modified]
        deleted = row[s.deleted]
        last_sync = row[s.last_sync]
        data = {k: jsonable(v) for k, v in row.items()}
        changed = jsonable(modified)
        if deleted is not None:
            timed = isinstance(deleted, dt.datetime | str)
            when = jsonable(deleted) if timed else changed
            # What the version is made of, raw: the removal happens only while the row
            # is still this deleted version (see ``remove``).
            made_of = {"d": encode_raw(deleted)} if timed else {"m": encode_raw(modified)}
            return SourceChange(
                key=str(key),
                status="deleted",
                version=f"deleted:{when}"[:128],
                changed=str(when or ""),
                data=data,
                mark={"k": encode_raw(key), **made_of},
                maybe_new=last_sync is None,
            )
        return SourceChange(
            key=str(key),
            status="new" if last_sync is None else "modified",
            version=str(changed)[:128] if modified is not None else "new",
            changed=str(changed or ""),
            data=data,
            mark={"k": encode_raw(key), "t": encode_raw(modified)},
            maybe_new=last_sync is None,
        )

    def scan(self, cursor: int) -> Iterator[tuple[list[SourceChange], int | None]]:
        # Pages by key, each its own short read: the application's writers are never
        # held up by a long-running read (SQLite without WAL blocks them).
        key = self.table.c[self.spec.key]
        last: Any = None
        while True:
            query = self._select().order_by(key).limit(BATCH)
            if last is not None:
                query = query.where(key > last)
            try:
                with self.engine.connect() as conn:
                    rows = [dict(r) for r in conn.execute(query).mappings()]
            except SQLAlchemyError as exc:
                raise TransientError(f"reading table {self.spec.name!r} failed: {exc}") from exc
            if not rows:
                return
            yield [self._change(r) for r in rows], None
            if len(rows) < BATCH:
                return
            last = rows[-1][self.spec.key]

    # -- writing back -----------------------------------------------------------
    def delivered(self, changes: Sequence[Claimed]) -> None:
        """Mark delivered new and modified rows synced. Deletions are not removed here:
        other sinks may read the table, so the outcome is recorded first and the row
        removed by ``sinks.sweep`` once every sink has one."""
        changes = [c for c in changes if c.status != "deleted"]
        if not changes:
            return
        s = self.spec
        t = self.table
        key_col = t.c[s.key]
        synced: list[dict[str, Any]] = []
        synced_now: list[dict[str, Any]] = []
        for c in changes:
            mark = c.mark or {}
            key = decode_raw(mark.get("k", c.key))
            if mark.get("t") is None:
                synced_now.append({"k": key})
            else:
                synced.append({"k": key, "t": decode_raw(mark["t"])})
        k: Any = sa.bindparam("k")
        try:
            with self.engine.begin() as conn:
                if synced:
                    # Never backwards: a late answer for an older version (its lease
                    # lapsed, a newer one went out meanwhile) must not undo the newer mark.
                    last_sync = t.c[s.last_sync]
                    t_param: Any = sa.bindparam("t")
                    conn.execute(
                        sa.update(t)
                        .where(key_col == k, sa.or_(last_sync.is_(None), last_sync < t_param))
                        .values({s.last_sync: t_param}),
                        synced,
                    )
                if synced_now:
                    conn.execute(
                        sa.update(t)
                        .where(key_col == k)
                        .values({s.last_sync: sa.func.current_timestamp()}),
                        synced_now,
                    )
        except SQLAlchemyError as exc:
            raise TransientError(f"marking rows of {s.name!r} synced failed: {exc}") from exc

    def remove(self, marks: Sequence[Any]) -> set[str]:
        """Remove deleted rows (their deletions' marks) every sink has an outcome for,
        each only while it is still that deleted version: one un-deleted or deleted
        again meanwhile stays. Returns the keys of those still in the table."""
        s = self.spec
        t = self.table
        key_col, deleted = t.c[s.key], t.c[s.deleted]
        keys = []
        try:
            with self.engine.begin() as conn:
                for mark in marks:
                    key = decode_raw(mark["k"])
                    keys.append(key)
                    same = [key_col == key, deleted.is_not(None)]
                    if "d" in mark:
                        same.append(deleted == decode_raw(mark["d"]))
                    elif "m" in mark:
                        same.append(t.c[s.modified] == decode_raw(mark["m"]))
                    conn.execute(sa.delete(t).where(*same))
                left = conn.execute(sa.select(key_col).where(key_col.in_(keys))).scalars()
                return {str(k) for k in left}
        except SQLAlchemyError as exc:
            raise TransientError(f"removing deleted rows of {s.name!r} failed: {exc}") from exc

    def selected(self, marks: Iterable[Any], where: str) -> set[str]:
        """Of the rows of ``marks``, the keys another sink's row filter ``where``
        selects: a sink holds a deleted row only if it would ever read it."""
        key_col = self.table.c[self.spec.key]
        keys = [decode_raw(m["k"]) for m in marks]
        query = sa.select(key_col).select_from(self.table).where(key_col.in_(keys))
        try:
            with self.engine.connect() as conn:
                rows = conn.execute(query.where(sa.text(f"({where})"))).scalars()
                return {str(k) for k in rows}
        except SQLAlchemyError as exc:
            raise TransientError(f"reading table {self.spec.name!r} failed: {exc}") from exc
