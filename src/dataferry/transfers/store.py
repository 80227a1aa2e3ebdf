"""SQL for a transfer's per-file rows (``job_files``)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, func, insert, select, update

from dataferry.db.base import utcnow
from dataferry.db.engine import Database
from dataferry.db.models import JobFileRow, JobRow
from dataferry.errors import JobLost
from dataferry.jobs.states import JobState
from dataferry.jobs.store import rowcount


class FileState:
    PENDING = "pending"
    DONE = "done"  # copied and verified
    SKIPPED = "skipped"  # already identical, or overwrite=never
    FAILED = "failed"
    # mode check: the destination's copy is the same / differs / is not there
    SAME = "same"
    DIFFERS = "differs"
    MISSING = "missing"


# Keys of a transfer job's params written while it runs (limits.py).
REFERENCE = "reference_ns"  # the moment ages are measured from, pinned at planning
UNKNOWN_MTIME = "unknown_mtime"  # files an age limit left out: their time is unknown

# A resumed or retried job leaves these alone (a check looks again at what differed).
FINISHED = (FileState.DONE, FileState.SKIPPED, FileState.SAME)


@dataclass(frozen=True, slots=True)
class PlannedFile:
    path: str  # relative to the transfer's source
    size: int
    # Modification time in nanoseconds since 1970 (an integer: exact, as os.stat's
    # st_mtime_ns; float seconds lose the last digits); None where the source cannot tell.
    mtime: int | None = None


@dataclass(frozen=True, slots=True)
class FileRow:
    id: int
    path: str
    size: int
    state: str
    mtime: int | None = None  # None: unknown, or planned before the column existed


@dataclass(frozen=True, slots=True)
class FileOutcome:
    id: int
    state: str
    checksum: str = ""
    error: str = ""


def _owned(job_id: int, owner: str) -> ColumnElement[bool]:
    """The job is still running under ``owner``'s lease: a write guarded by this
    changes nothing once the lease has passed to another worker."""
    return and_(
        JobRow.id == job_id,
        JobRow.state == JobState.RUNNING.value,
        JobRow.lease_owner == owner,
    )


class TransferStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def pin_reference(self, job_id: int, owner: str, now_ns: int) -> int:
        """The moment (nanoseconds since 1970) the job's age limits are measured from:
        the one stored by its first planning, else ``now_ns``, stored now (before the
        listing, so that a plan interrupted and made again takes the same files)."""
        with self.db.session() as s:
            params = s.execute(select(JobRow.params).where(JobRow.id == job_id)).scalar_one()
            pinned = params.get(REFERENCE)
            if isinstance(pinned, int):
                return pinned
            done = s.execute(
                update(JobRow)
                .where(_owned(job_id, owner))
                .values(params={**params, REFERENCE: now_ns})
            )
            if rowcount(done) != 1:
                raise JobLost(f"job {job_id}: not ours any more")
            return now_ns

    def save_plan(
        self, job_id: int, owner: str, files: list[PlannedFile], unknown_mtime: int = 0
    ) -> None:
        """Store the plan and the totals in one transaction, only while we own the job;
        ``unknown_mtime`` (files an age limit left out for want of a time) goes into
        the job's params, for the result of whichever run finishes the job."""
        with self.db.session() as s:
            if unknown_mtime:
                params = s.execute(select(JobRow.params).where(JobRow.id == job_id)).scalar_one()
                s.execute(
                    update(JobRow)
                    .where(JobRow.id == job_id)
                    .values(params={**params, UNKNOWN_MTIME: unknown_mtime})
                )
            done = s.execute(
                update(JobRow)
                .where(_owned(job_id, owner), JobRow.files_total.is_(None))
                .values(
                    files_total=len(files),
                    bytes_total=sum(f.size for f in files),
                    updated=utcnow(),
                )
            )
            if rowcount(done) != 1:
                raise JobLost(f"job {job_id}: not ours any more, or planned already")
            now = utcnow()
            rows = [
                {
                    "job_id": job_id,
                    "path": f.path,
                    "size": f.size,
                    "mtime": f.mtime,
                    "state": FileState.PENDING,
                    "checksum": "",
                    "error": "",
                    "updated": now,
                }
                for f in files
            ]
            for i in range(0, len(rows), 5000):
                s.execute(insert(JobFileRow), rows[i : i + 5000])

    def unfinished(self, job_id: int) -> list[FileRow]:
        with self.db.read() as s:
            rows = s.execute(
                select(
                    JobFileRow.id,
                    JobFileRow.path,
                    JobFileRow.size,
                    JobFileRow.state,
                    JobFileRow.mtime,
                )
                .where(JobFileRow.job_id == job_id, JobFileRow.state.not_in(FINISHED))
                .order_by(JobFileRow.id)
            ).all()
            return [FileRow(*r) for r in rows]

    def planned_paths(self, job_id: int) -> set[str]:
        """Every path of the plan, whatever its state."""
        with self.db.read() as s:
            rows = s.execute(select(JobFileRow.path).where(JobFileRow.job_id == job_id))
            return {path for (path,) in rows}

    def state_counts(self, job_id: int) -> dict[str, int]:
        """How many files of the job are in each state."""
        with self.db.read() as s:
            rows = s.execute(
                select(JobFileRow.state, func.count())
                .where(JobFileRow.job_id == job_id)
                .group_by(JobFileRow.state)
            )
            return {state: int(n) for state, n in rows}

    def finished_totals(self, job_id: int) -> tuple[int, int]:
        """(files, bytes) already done or skipped: where a resumed job starts counting."""
        with self.db.read() as s:
            n, size = s.execute(
                select(func.count(), func.coalesce(func.sum(JobFileRow.size), 0)).where(
                    JobFileRow.job_id == job_id, JobFileRow.state.in_(FINISHED)
                )
            ).one()
            return int(n), int(size)

    def record(self, outcomes: Iterable[FileOutcome]) -> None:
        batch = list(outcomes)
        if not batch:
            return
        now = utcnow()
        with self.db.session() as s:
            s.execute(
                update(JobFileRow),
                [
                    {
                        "id": o.id,
                        "state": o.state,
                        "checksum": o.checksum,
                        "error": o.error,
                        "updated": now,
                    }
                    for o in batch
                ],
            )
