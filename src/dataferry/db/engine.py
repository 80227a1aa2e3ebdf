"""Engine and sessions: SQLite in WAL mode with a busy timeout (its log checkpointed
in the background, see ``walcheckpoint``), or PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, ExceptionContext, make_url
from sqlalchemy.exc import ArgumentError, DataError
from sqlalchemy.orm import Session, sessionmaker

from dataferry.db.walcheckpoint import LOG_BYTES, SAFETY_PAGES, WalCheckpointer
from dataferry.errors import ConfigurationError, InvalidRequest

SQLITE_BUSY_TIMEOUT_MS = 30_000
# A row lives whole in one page when it fits: with the default 4 KiB pages a
# replicated record of a little over 2 KiB (1 KiB of data, its stamps and ids)
# took a page to itself, doubling what was written; 8 KiB pages waste less.
SQLITE_PAGE_SIZE = 8192
# Page cache per connection, in KiB (SQLite's default is 2 MiB). The primary key of
# records is a random UUID: a replicated batch's inserts land all over that index,
# and with 2 MiB its pages were read back from the OS on every batch (13% less
# writer CPU applying 100,000 records with 16 MiB). Filled only as pages are read.
SQLITE_CACHE_KIB = 16_384


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # isolation_level=None hands transaction control to us: BEGIN IMMEDIATE below
    # takes the write lock up front, so two writers wait instead of deadlocking.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    # Only a new, empty database takes it (before WAL mode is set); see SQLITE_PAGE_SIZE.
    cur.execute(f"PRAGMA page_size={SQLITE_PAGE_SIZE}")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
    # Commits checkpoint the log themselves only past this bound; below it the
    # Database's WalCheckpointer does it off the committing thread.
    cur.execute(f"PRAGMA wal_autocheckpoint={SAFETY_PAGES}")
    cur.execute(f"PRAGMA journal_size_limit={LOG_BYTES}")
    cur.close()


def _sqlite_begin(conn: Any) -> None:
    # Readers take no lock (WAL lets them run beside a writer); writers take the
    # write lock at BEGIN so a read-then-write never fails with "database is locked".
    if conn.get_execution_options().get("dataferry_read_only"):
        conn.exec_driver_sql("BEGIN")
    else:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def _refused_value(context: ExceptionContext) -> None:
    """A value the database cannot hold or compare, sent by a caller (an id past the
    64-bit range, past PostgreSQL's 32-bit ``integer``, text with a NUL character):
    the request is invalid, not the server broken. The statement's transaction is
    rolled back as for any error, so nothing changes."""
    original = context.original_exception
    if isinstance(original, OverflowError):  # sqlite3 checks integers before sending
        raise InvalidRequest("a number is out of the range the database can store") from None
    if isinstance(context.sqlalchemy_exception, DataError):
        first_line = str(original).splitlines()[0] if str(original) else type(original).__name__
        raise InvalidRequest(f"the database cannot take a value: {first_line}") from None


# The drivers this service is built and tested with (see pyproject.toml).
SUPPORTED_DRIVERS = ("sqlite", "sqlite+pysqlite", "postgresql+psycopg")


def parse_database_url(url: str) -> URL:
    """``url`` parsed, or ConfigurationError if it is not one of a supported database."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigurationError(
            f"database_url {url!r} is not a database URL (e.g. sqlite:////var/lib/dataferry/"
            "dataferry.db or postgresql+psycopg://user@host/db)"
        ) from None
    if parsed.drivername not in SUPPORTED_DRIVERS:
        backend = parsed.get_backend_name()
        hint = (
            "write postgresql+psycopg://... (the driver installed with dataferry)"
            if backend == "postgresql"
            else f"{backend} is not supported: use sqlite:/// or postgresql+psycopg://"
        )
        raise ConfigurationError(f"database_url: {hint}")
    return parsed


def make_engine(url: str) -> Engine:
    """Create an engine for ``url``; SQLite gets its directory, WAL and busy timeout."""
    parsed = parse_database_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
    else:
        engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
    event.listen(engine, "handle_error", _refused_value)
    return engine


class Database:
    """One engine and its session factory; ``session()`` is a unit of work."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._read_sessions = sessionmaker(
            self.engine.execution_options(dataferry_read_only=True), expire_on_commit=False
        )
        self._checkpointer: WalCheckpointer | None = None
        database = self.engine.url.database
        if self.is_sqlite and database and database != ":memory:":
            self._checkpointer = WalCheckpointer(database)
            event.listen(self.engine, "commit", self._committed)

    def _committed(self, conn: Any) -> None:
        if self._checkpointer is not None and not conn.get_execution_options().get(
            "dataferry_read_only"
        ):
            self._checkpointer.notify()

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction: committed when the block ends, rolled back on error."""
        with self._sessions() as session, session.begin():
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only transaction: on SQLite it does not take the write lock."""
        with self._read_sessions() as session, session.begin():
            yield session

    def dispose(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
        self.engine.dispose()
