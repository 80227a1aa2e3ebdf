"""Which ``last_sync`` column a table sink writes, however its URL is written.

Two sinks that read one table and set one ``last_sync`` column cannot both work: the
first to deliver a row marks it synced, and the other never sends it. The service
refuses such a pair; this module says whether two definitions are one. Pure: no I/O
(a SQLite path is made absolute and its links resolved, nothing is opened).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from typing import Any

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

# What a URL without a port connects to, by backend.
DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306, "mariadb": 3306, "mssql": 1433, "oracle": 1521}
# The schema a table name without one is in (MySQL: the URL's database).
DEFAULT_SCHEMAS = {"postgresql": "public", "sqlite": "main", "mssql": "dbo"}
# Names of this machine; a server reached by one is reached by the others.
LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})

Column = tuple[tuple[str, ...], str, str]
Table = tuple[tuple[str, ...], str]


def _server(url: URL, backend: str) -> tuple[str, ...] | None:
    """The database server and database a URL reaches; the user, password, driver
    and options are left out (they change how, not where). None: a private
    in-memory SQLite database, which no other sink can share."""
    if backend == "sqlite":
        path = url.database or ""
        if path.startswith("file:"):  # a URI filename (?uri=true)
            path = path[len("file:") :].split("?", 1)[0]
        if not path or path == ":memory:" or url.query.get("mode") == "memory":
            return None
        return ("sqlite", os.path.realpath(path))
    host = str(url.host or url.query.get("host") or "").lower()
    if host in LOOPBACK:
        host = "localhost"
    port = url.port or DEFAULT_PORTS.get(backend, 0)
    database = "" if backend in ("mysql", "mariadb") else str(url.database or "")
    return (backend, host, str(port), database)


def column(url: str, table: str, last_sync: str) -> Column | None:
    """(database, schema.table, column) that a table sink sets, in one spelling:
    names compared case-insensitively, a table without a schema in the default one.
    None if nobody else can write it (an in-memory database) or the URL is unusable."""
    try:
        parsed = make_url(url)
        backend = parsed.get_backend_name()
        server = _server(parsed, backend)
    except (ArgumentError, ValueError):  # a NUL or lone surrogate in a path, too
        return None
    if server is None:
        return None
    schema, _, name = table.rpartition(".")
    if not schema:
        default = DEFAULT_SCHEMAS.get(backend, "")
        if backend in ("mysql", "mariadb"):
            default = str(parsed.database or "")
        schema = default
    return server, f"{schema}.{name}".casefold(), last_sync.casefold()


def table_of(col: Column | None) -> Table | None:
    """The (database, schema.table) of a column: sinks reading one table, whatever
    column each sets, hold its deleted rows together (``sinks.sweep``)."""
    return None if col is None else (col[0], col[1])


def claim(col: Column | None) -> str | None:
    """What the database keeps unique for a column: a digest, since the sink's table URL
    is sealed and its host or file path should not be readable from the claim."""
    if col is None:
        return None
    return hashlib.sha256(json.dumps(col).encode()).hexdigest()


def column_of(source: Any) -> Column | None:
    """:func:`column` of a source as stored (a dict, possibly written by an older
    version, table URL opened), or None if it is not a table source."""
    table = source.get("table") if isinstance(source, dict) else None
    if not isinstance(table, dict):
        return None
    url, name, last_sync = (table.get(k) for k in ("url", "name", "last_sync"))
    if not (isinstance(url, str) and isinstance(name, str) and isinstance(last_sync, str)):
        return None
    return column(url, name, last_sync)


def shadowed(sinks: Iterable[tuple[int, str, Column | None]]) -> dict[int, str]:
    """Of sinks (id, name, column) setting one column, every one but the oldest (the
    lowest id), mapped to the oldest one's name. Such pairs are refused now, but an
    older version stored them: only the oldest is run, so it sends every row."""
    first: dict[Column, str] = {}
    out: dict[int, str] = {}
    for sink_id, name, col in sorted(sinks, key=lambda s: s[0]):
        if col is None:
            continue
        if col in first:
            out[sink_id] = first[col]
        else:
            first[col] = name
    return out


def shadowed_reason(other: str) -> str:
    return (
        f"sets the last_sync column that sink {other!r} sets, so it would never send"
        " a row the other marked synced: give this sink its own last_sync column"
    )
