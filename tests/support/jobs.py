"""Jobs in tests: waiting for an in-process core's job to reach a state, and many
finished jobs at once written straight into the database (for paging tests and the
dashboard benchmark: the executor has nothing to run)."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from sqlalchemy import insert

from dataferry.db.base import utcnow
from dataferry.db.engine import Database
from dataferry.db.models import JobRow


def wait_state(core: Any, job_id: int, states: set[str], timeout: float = 20) -> Any:
    """The job once its state is one of ``states`` (polled every 0.05 s)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = core.jobs.get(job_id)
        if job.state.value in states:
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} is {core.jobs.get(job_id).state}, wanted {states}")


def insert_jobs(database_url: str, n: int, batch: int = 5000) -> None:
    """``n`` jobs: every 7th failed, every 5th of kind ``ingest``, the rest ``transfer``
    succeeded, with sizes, so filters and progress have something to show."""
    db = Database(database_url)
    start = utcnow() - timedelta(hours=1)
    try:
        rows = []
        for i in range(1, n + 1):
            failed = i % 7 == 0
            rows.append(
                {
                    "kind": "ingest" if i % 5 == 0 else "transfer",
                    "queue": "default",
                    "state": "failed" if failed else "succeeded",
                    "params": {"source": f"lab:run{i}", "destination": f"archive:run{i}"},
                    "result": {},
                    "task": "failed" if failed else "done",
                    "task_percent": 40.0 if failed else 100.0,
                    "bytes_done": 400 if failed else 1000,
                    "bytes_total": 1000,
                    "files_done": 1,
                    "files_total": 2,
                    "attempts": 1,
                    "max_attempts": 5,
                    "error": f"job {i}: source vanished" if failed else "",
                    "worker": "bench",
                    "created": start + timedelta(milliseconds=i),
                    "updated": start + timedelta(milliseconds=i),
                }
            )
            if len(rows) == batch:
                with db.session() as s:
                    s.execute(insert(JobRow), rows)
                rows = []
        if rows:
            with db.session() as s:
                s.execute(insert(JobRow), rows)
    finally:
        db.dispose()
