"""An application's table for sink tests: SQLite file or PostgreSQL, one per test."""

from __future__ import annotations

import datetime as dt
import itertools
import threading
import uuid
from collections.abc import Generator
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from tests.support.databases import postgres_server_url
from tests.support.services import port_open, unavailable

DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


class AppTable:
    """A ``vettings`` table with the columns a sink needs, and helpers that change it
    the way an application would (each change stamps a strictly later ``modified``)."""

    def __init__(self, url: str, name: str) -> None:
        self.url = url
        self.name = name
        self.engine = sa.create_engine(
            url, connect_args={"timeout": 60} if url.startswith("sqlite") else {}
        )
        self.sqlite = self.engine.dialect.name == "sqlite"
        self._clock = itertools.count(1)
        self._lock = threading.Lock()
        self._base = dt.datetime(2026, 1, 1, 0, 0, 0)
        ts = "TEXT" if self.sqlite else "TIMESTAMP"
        with self.engine.begin() as c:
            c.execute(
                sa.text(
                    f"CREATE TABLE {name} (id INTEGER PRIMARY KEY, species TEXT, comment TEXT,"
                    f" rev INTEGER NOT NULL, user_email TEXT, is_admin INTEGER, area TEXT,"
                    f" modified {ts}, deleted {ts}, last_sync {ts})"
                )
            )

    def now(self) -> Any:
        """A strictly later time each call (as the database stores it)."""
        with self._lock:
            t = self._base + dt.timedelta(milliseconds=next(self._clock))
        return t.strftime("%Y-%m-%d %H:%M:%S.%f") if self.sqlite else t

    def insert(
        self, rid: int, species: str = "Acacia", email: str | None = "a@b.org", **kw: Any
    ) -> None:
        values = {
            "id": rid,
            "species": species,
            "comment": kw.get("comment", ""),
            "rev": kw.get("rev", 1),
            "user_email": email,
            "is_admin": kw.get("is_admin", 0),
            "area": kw.get("area", "POINT(149.1 -35.3)"),
            "modified": kw.get("modified", self.now()),
            "deleted": kw.get("deleted"),
            "last_sync": kw.get("last_sync"),
        }
        with self.engine.begin() as c:
            c.execute(
                sa.text(
                    f"INSERT INTO {self.name} (id, species, comment, rev, user_email, is_admin,"
                    " area, modified, deleted, last_sync) VALUES (:id, :species, :comment, :rev,"
                    " :user_email, :is_admin, :area, :modified, :deleted, :last_sync)"
                ),
                values,
            )

    def edit(self, rid: int, **values: Any) -> None:
        values = {**values, "modified": self.now()}
        sets = ", ".join(f"{k} = :{k}" for k in values)
        with self.engine.begin() as c:
            c.execute(
                sa.text(f"UPDATE {self.name} SET {sets}, rev = rev + 1 WHERE id = :rid"),
                {**values, "rid": rid},
            )

    def delete(self, rid: int) -> None:
        with self.engine.begin() as c:
            c.execute(
                sa.text(f"UPDATE {self.name} SET deleted = :d WHERE id = :rid AND deleted IS NULL"),
                {"d": self.now(), "rid": rid},
            )

    def set(self, rid: int, **values: Any) -> None:
        sets = ", ".join(f"{k} = :{k}" for k in values)
        with self.engine.begin() as c:
            c.execute(
                sa.text(f"UPDATE {self.name} SET {sets} WHERE id = :rid"), {**values, "rid": rid}
            )

    def add_column(self, name: str) -> None:
        """Another time column (e.g. a second sink's own ``last_sync``)."""
        with self.engine.begin() as c:
            kind = "TEXT" if self.sqlite else "TIMESTAMP"
            c.execute(sa.text(f"ALTER TABLE {self.name} ADD COLUMN {name} {kind}"))

    def rows(self) -> dict[int, dict[str, Any]]:
        with self.engine.connect() as c:
            return {
                r["id"]: dict(r)
                for r in c.execute(sa.text(f"SELECT * FROM {self.name}")).mappings()
            }

    def row(self, rid: int) -> dict[str, Any] | None:
        return self.rows().get(rid)

    def drop(self) -> None:
        with self.engine.begin() as c:
            c.execute(sa.text(f"DROP TABLE IF EXISTS {self.name}"))
        self.engine.dispose()


def table_url(kind: str, folder: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{folder / 'app.db'}"
    url = postgres_server_url() or DEFAULT_POSTGRES
    if not port_open("127.0.0.1", 5432) and "127.0.0.1:5432" in url:
        unavailable("PostgreSQL at 127.0.0.1:5432 is not running (table source on PostgreSQL)")
    return sa.make_url(url).render_as_string(hide_password=False)


def make_table(kind: str, folder: Path) -> Generator[AppTable, None, None]:
    table = AppTable(table_url(kind, folder), f"vettings_{uuid.uuid4().hex[:8]}")
    try:
        yield table
    finally:
        table.drop()


def table_source(table: AppTable, **extra: Any) -> dict[str, Any]:
    """The ``source`` of a sink reading ``table`` (columns id, modified, deleted,
    last_sync); keywords add keys to it."""
    return {
        "table": {
            "url": table.url,
            "name": table.name,
            "key": "id",
            "modified": "modified",
            "deleted": "deleted",
            "last_sync": "last_sync",
            **extra,
        }
    }


def table_sink(table: AppTable, url: str, **extra: Any) -> dict[str, Any]:
    """A sink definition reading ``table`` (see :func:`table_source`);
    ``table_extra`` adds keys to the table source, other keywords to the sink."""
    table_extra = extra.pop("table_extra", {})
    return {
        "name": "vet",
        "source": table_source(table, **table_extra),
        "url": url,
        "retry_interval": 0.01,
        "retry_cap": 0.02,
        **extra,
    }
