"""SQLite WAL checkpoints in a background thread instead of inside committing calls.

By default SQLite checkpoints the write-ahead log in the connection whose commit
takes the log past ``wal_autocheckpoint`` pages: that commit then copies the
log's pages into the database file and waits for the fsync, which made up most
of a large replication commit. Here the engine's connections checkpoint on
their own only past a high safety bound (``SAFETY_PAGES``), and a thread with
its own connection runs a PASSIVE checkpoint after commits: PASSIVE never
blocks readers or writers, it copies what is committed and leaves the rest for
its next round. A writer that begins while the log is fully copied starts it
over, so the log stays small; if the thread falls behind (or is not running, as
in a short CLI command), the safety bound still keeps the log bounded.

Small commits (a job's heartbeat, a sink's outbox row) do not each cost a
checkpoint and its fsync: the thread checkpoints only once the log file is
larger than ``LOG_BYTES``, and connections truncate the file back to that size
when they start the log over (``journal_size_limit``), so the file's size
tells how much was written since.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading

log = logging.getLogger(__name__)

# Pages (64 MiB of 8 KiB pages) past which a committing connection checkpoints by
# itself anyway: the bound on the log if this thread falls behind or is not running.
SAFETY_PAGES = 8_192
# Log file size past which the thread checkpoints, and to which a restarted log
# is truncated (SQLite's own default threshold was 1,000 pages of 4 KiB).
LOG_BYTES = 8 * 1024 * 1024
# A commit that woke the thread may still be in flight when it checkpoints: it
# looks once more this long after the last wake-up.
SETTLE_SECONDS = 0.05
# Checkpoints take no write lock; a short busy timeout only covers the moments a
# log restart or another checkpointer holds the checkpoint lock.
BUSY_TIMEOUT_MS = 1_000


class WalCheckpointer:
    """Checkpoints one SQLite database file's WAL after commits (``notify``)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._wake = threading.Event()
        self._stopping = False
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def notify(self) -> None:
        """A commit happened (or is happening): checkpoint soon. Starts the thread
        on first use, so an engine that never writes never starts one."""
        if self._thread is None:
            with self._lock:
                if self._thread is None and not self._stopping:
                    self._thread = threading.Thread(
                        target=self._run, name="sqlite-checkpoint", daemon=True
                    )
                    self._thread.start()
        self._wake.set()

    def stop(self) -> None:
        """Stop the thread after a last checkpoint (idempotent)."""
        with self._lock:
            self._stopping = True
            thread = self._thread
        self._wake.set()
        if thread is not None:
            thread.join()

    def _run(self) -> None:
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error:
            log.exception("WAL checkpointer cannot open %s; commits checkpoint instead", self.path)
            return
        try:
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            while True:
                self._wake.wait()
                self._wake.clear()
                if self._stopping:
                    self._checkpoint(conn)
                    return
                self._checkpoint_if_due(conn)
                if not self._wake.wait(SETTLE_SECONDS):
                    self._checkpoint_if_due(conn)
        finally:
            conn.close()

    def _checkpoint_if_due(self, conn: sqlite3.Connection) -> None:
        try:
            size = os.path.getsize(self.path + "-wal")
        except OSError:  # no log (yet, or any more): nothing to copy
            return
        if size > LOG_BYTES:
            self._checkpoint(conn)

    def _checkpoint(self, conn: sqlite3.Connection) -> None:
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error as exc:  # e.g. busy: the next commit tries again
            log.debug("WAL checkpoint of %s skipped: %s", self.path, exc)
