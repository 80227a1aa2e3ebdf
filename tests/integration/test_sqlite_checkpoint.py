"""SQLite's write-ahead log is checkpointed by the Database's background thread
(not inside the committing call), stays bounded under a stream of large
commits, and the thread stops on dispose. Real database files, no stand-ins."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from sqlalchemy import text

from dataferry.db.engine import SQLITE_CACHE_KIB, SQLITE_PAGE_SIZE, Database
from dataferry.db.walcheckpoint import LOG_BYTES, SAFETY_PAGES


def _checkpointers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "sqlite-checkpoint"]


def test_commits_are_checkpointed_in_the_background_and_the_log_stays_bounded(
    tmp_path: Path,
) -> None:
    path = tmp_path / "x.db"
    db = Database(f"sqlite:///{path}")
    before = len(_checkpointers())
    try:
        with db.session() as s:
            assert s.execute(text("PRAGMA page_size")).scalar() == SQLITE_PAGE_SIZE
            assert s.execute(text("PRAGMA wal_autocheckpoint")).scalar() == SAFETY_PAGES
            assert s.execute(text("PRAGMA cache_size")).scalar() == -SQLITE_CACHE_KIB
            s.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT NOT NULL)"))
        assert len(_checkpointers()) == before + 1
        body = "x" * 2000
        largest = 0
        for _ in range(40):  # 40 commits of about 1.6 MB
            with db.session() as s:
                s.execute(
                    text("INSERT INTO t (body) VALUES (:b)"), [{"b": body} for _ in range(800)]
                )
            largest = max(largest, path.with_name("x.db-wal").stat().st_size)
            # A pause between commits: the thread copies the log meanwhile, so the
            # next commit starts it over. Nothing else checkpoints below SAFETY_PAGES
            # (64 MiB), so without the thread it would grow to about that.
            time.sleep(0.2)
        assert largest < 10 * 1_700_000
        with db.read() as s:
            assert s.execute(text("SELECT count(*) FROM t")).scalar() == 32_000
    finally:
        db.dispose()
    assert len(_checkpointers()) == before  # stopped and joined
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 32_000


def test_small_commits_do_not_each_cost_a_checkpoint(tmp_path: Path) -> None:
    """A stream of small commits (heartbeats, outbox rows) leaves the log alone
    until it passes LOG_BYTES: no checkpoint, and so no fsync, per commit."""
    path = tmp_path / "s.db"
    db = Database(f"sqlite:///{path}")
    try:
        with db.session() as s:
            assert s.execute(text("PRAGMA journal_size_limit")).scalar() == LOG_BYTES
            s.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT NOT NULL)"))
        for _ in range(30):
            with db.session() as s:
                s.execute(text("INSERT INTO t (body) VALUES (:b)"), {"b": "x" * 100})
            time.sleep(0.05)  # time enough for the thread to checkpoint, were it to
        time.sleep(0.3)
        conn = sqlite3.connect(path)
        try:
            _, frames, _ = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        finally:
            conn.close()
        # Never copied, so never started over: the log still holds every commit.
        assert frames >= 30
    finally:
        db.dispose()


def test_a_database_that_only_reads_starts_no_thread(tmp_path: Path) -> None:
    path = tmp_path / "y.db"
    sqlite3.connect(path).close()
    before = len(_checkpointers())
    db = Database(f"sqlite:///{path}")
    try:
        with db.read() as s:
            s.execute(text("SELECT 1"))
        assert len(_checkpointers()) == before
    finally:
        db.dispose()


def test_an_existing_database_keeps_its_page_size(tmp_path: Path) -> None:
    path = tmp_path / "z.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
    conn.close()
    db = Database(f"sqlite:///{path}")
    try:
        with db.session() as s:
            s.execute(text("INSERT INTO t DEFAULT VALUES"))
            assert s.execute(text("PRAGMA page_size")).scalar() == 4096
    finally:
        db.dispose()
