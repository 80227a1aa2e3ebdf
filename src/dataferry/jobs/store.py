"""All SQL about jobs: create, claim with a lease, progress, finish, requeue.

Every state change is a guarded UPDATE (``WHERE state IN (allowed sources)``,
and for a running job ``AND lease_owner = me``), so concurrent executors,
cancels and ticks can never both win: the loser sees zero rows updated.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import CursorResult, delete, func, select, update
from sqlalchemy.orm import Session

from dataferry.db.base import utcnow
from dataferry.db.engine import Database
from dataferry.db.models import JobAttemptRow, JobFileRow, JobRow
from dataferry.errors import JobLost, NotFound
from dataferry.jobs.model import Job
from dataferry.jobs.states import FINAL_STATES, JobEvent, JobState, next_state, sources_of
from dataferry.jobs.waiting import JobChanges

_PROGRESS_FIELDS = frozenset(
    {"task", "task_percent", "bytes_done", "bytes_total", "files_done", "files_total", "result"}
)


def rowcount(result: object) -> int:
    assert isinstance(result, CursorResult)
    return result.rowcount


def _states(event: JobEvent) -> list[str]:
    return [s.value for s in sources_of(event)]


# Attempts to apply a user event to a job that keeps changing under it.
_TRANSITION_TRIES = 5


class JobStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        # Told after each committed change of a job's state, for JobService.wait.
        self.changes = JobChanges()

    # -- reads -----------------------------------------------------------------
    def get(self, job_id: int) -> Job:
        with self.db.read() as s:
            row = s.get(JobRow, job_id)
            if row is None:
                raise NotFound(f"job {job_id} does not exist")
            return Job.from_row(row)

    def page(
        self,
        state: str | None = None,
        kind: str | None = None,
        limit: int = 50,
        offset: int = 0,
        before: int | None = None,
        after: int | None = None,
    ) -> tuple[list[Job], int]:
        """Newest first. ``before``/``after`` are keyset cursors (job ids): a page next to
        a known id costs the same at job 100,000 as at job 100, unlike a deep ``offset``."""
        query = select(JobRow)
        count = select(func.count()).select_from(JobRow)
        if state:
            query = query.where(JobRow.state == state)
            count = count.where(JobRow.state == state)
        if kind:
            query = query.where(JobRow.kind == kind)
            count = count.where(JobRow.kind == kind)
        if before is not None:
            query = query.where(JobRow.id < before)
        order = JobRow.id.desc()
        if after is not None:
            # the page just newer than ``after``: read upwards, then show newest first
            query = query.where(JobRow.id > after)
            order = JobRow.id.asc()
        with self.db.read() as s:
            rows = list(s.scalars(query.order_by(order).limit(limit).offset(offset)).all())
            total = s.scalar(count) or 0
            if after is not None:
                rows.reverse()
            return [Job.from_row(r) for r in rows], total

    def counts_by_state(self) -> dict[str, int]:
        with self.db.read() as s:
            rows = s.execute(select(JobRow.state, func.count()).group_by(JobRow.state)).all()
            return {state: n for state, n in rows}

    def running(self) -> list[tuple[int, str, str]]:
        """(job id, kind, worker) of every running job: who runs what, for /metrics."""
        with self.db.read() as s:
            rows = s.execute(
                select(JobRow.id, JobRow.kind, JobRow.worker)
                .where(JobRow.state == JobState.RUNNING.value)
                .order_by(JobRow.id)
            ).all()
            return [(i, k, w) for i, k, w in rows]

    def bytes_done_total(self) -> int:
        with self.db.read() as s:
            return int(s.scalar(select(func.coalesce(func.sum(JobRow.bytes_done), 0))) or 0)

    def attempts(self, job_id: int) -> list[dict[str, Any]]:
        with self.db.read() as s:
            rows = s.scalars(
                select(JobAttemptRow)
                .where(JobAttemptRow.job_id == job_id)
                .order_by(JobAttemptRow.attempt)
            ).all()
            return [
                {
                    "attempt": r.attempt,
                    "worker": r.worker,
                    "started": r.started.isoformat(),
                    "ended": r.ended.isoformat() if r.ended else None,
                    "outcome": r.outcome,
                    "error": r.error,
                }
                for r in rows
            ]

    def files(self, job_id: int, limit: int, offset: int) -> list[dict[str, Any]]:
        """Per-file rows of a job (transfers and other file-moving kinds)."""
        with self.db.read() as s:
            rows = s.scalars(
                select(JobFileRow)
                .where(JobFileRow.job_id == job_id)
                .order_by(JobFileRow.id)
                .limit(limit)
                .offset(offset)
            ).all()
            return [
                {
                    "path": r.path,
                    "size": r.size,
                    "mtime": r.mtime,  # ns since 1970 at the source; None: unknown
                    "state": r.state,
                    "checksum": r.checksum,
                    "error": r.error,
                }
                for r in rows
            ]

    def queued_ids(self, older_than: datetime, limit: int = 500) -> list[int]:
        with self.db.read() as s:
            return list(
                s.scalars(
                    select(JobRow.id)
                    .where(JobRow.state == JobState.QUEUED.value, JobRow.updated < older_than)
                    .order_by(JobRow.id)
                    .limit(limit)
                ).all()
            )

    # -- writes ----------------------------------------------------------------
    def create(
        self,
        kind: str,
        params: dict[str, Any],
        *,
        queue: str = "default",
        max_attempts: int = 5,
        session: Session | None = None,
    ) -> Job:
        """Insert a queued job; pass ``session`` to create it inside a caller's transaction."""
        now = utcnow()
        row = JobRow(
            kind=kind,
            queue=queue,
            state=JobState.QUEUED.value,
            params=params,
            result={},
            task="queued",
            max_attempts=max_attempts,
            created=now,
            updated=now,
        )
        if session is not None:
            session.add(row)
            session.flush()
            return Job.from_row(row)
        with self.db.session() as s:
            s.add(row)
            s.flush()
            return Job.from_row(row)

    def create_claimed(
        self,
        kind: str,
        params: dict[str, Any],
        owner: str,
        lease_seconds: float,
        *,
        queue: str = "default",
        max_attempts: int = 5,
        **progress: Any,
    ) -> Job:
        """Insert a job already running under ``owner`` (no executor can take it):
        for work that starts in a front door, such as receiving an upload. Hand it to
        the executors later with ``finish(..., JobEvent.LEASE_EXPIRED)``."""
        with self.db.session() as s:
            job = self.create(kind, params, queue=queue, max_attempts=max_attempts, session=s)
            claimed = self._claim(s, job.id, owner, lease_seconds)
            assert claimed is not None
            if progress:
                s.execute(update(JobRow).where(JobRow.id == job.id).values(**progress))
                row = s.get(JobRow, job.id, populate_existing=True)
                assert row is not None
                claimed = Job.from_row(row)
            return claimed

    def claim_next(
        self, owner: str, lease_seconds: float, queues: Iterable[str] | None = None
    ) -> Job | None:
        """Atomically take the oldest runnable queued job, or None."""
        for _ in range(5):
            with self.db.session() as s:
                query = select(JobRow.id).where(JobRow.state == JobState.QUEUED.value)
                if queues is not None:
                    query = query.where(JobRow.queue.in_(list(queues)))
                query = query.order_by(JobRow.id).limit(1)
                if not self.db.is_sqlite:
                    query = query.with_for_update(skip_locked=True)
                job_id = s.scalar(query)
                if job_id is None:
                    return None
                job = self._claim(s, job_id, owner, lease_seconds)
                if job is not None:
                    return job
        return None

    def claim(self, job_id: int, owner: str, lease_seconds: float) -> Job | None:
        """Atomically take one given job if it is still queued (a Celery delivery)."""
        with self.db.session() as s:
            return self._claim(s, job_id, owner, lease_seconds)

    def _claim(self, s: Session, job_id: int, owner: str, lease_seconds: float) -> Job | None:
        now = utcnow()
        done = s.execute(
            update(JobRow)
            .where(JobRow.id == job_id, JobRow.state.in_(_states(JobEvent.CLAIM)))
            .values(
                state=next_state(JobState.QUEUED, JobEvent.CLAIM).value,
                lease_owner=owner,
                lease_expires_at=now + timedelta(seconds=lease_seconds),
                attempts=JobRow.attempts + 1,
                worker=owner,
                error="",
                next_run_at=None,
                updated=now,
            )
        )
        if rowcount(done) != 1:
            return None
        row = s.get(JobRow, job_id, populate_existing=True)
        assert row is not None
        s.add(JobAttemptRow(job_id=job_id, attempt=row.attempts, worker=owner, started=now))
        return Job.from_row(row)

    def _owned(self, job_id: int, owner: str) -> Any:
        return update(JobRow).where(
            JobRow.id == job_id,
            JobRow.state == JobState.RUNNING.value,
            JobRow.lease_owner == owner,
        )

    def heartbeat(self, job_id: int, owner: str, lease_seconds: float, **progress: Any) -> None:
        """Renew the lease and store progress; :class:`JobLost` if no longer ours."""
        unknown = set(progress) - _PROGRESS_FIELDS
        if unknown:
            raise ValueError(f"not progress fields: {sorted(unknown)}")
        now = utcnow()
        with self.db.session() as s:
            done = s.execute(
                self._owned(job_id, owner).values(
                    lease_expires_at=now + timedelta(seconds=lease_seconds), updated=now, **progress
                )
            )
            if rowcount(done) != 1:
                raise JobLost(f"job {job_id} is no longer run by {owner}")

    def finish(
        self,
        job_id: int,
        owner: str,
        event: JobEvent,
        *,
        error: str = "",
        next_run_at: datetime | None = None,
        **progress: Any,
    ) -> bool:
        """End this run with ``event``; False if the job was taken from us meanwhile."""
        target = next_state(JobState.RUNNING, event).value
        return self._end_run(
            job_id, owner, target, target, error, error=error, next_run_at=next_run_at, **progress
        )

    def hand_back(self, job_id: int, owner: str, **progress: Any) -> bool:
        """Put a job this process is running back in the queue because the process is
        stopping (not the job's fault: the attempt is not counted); False if the job
        was taken from us meanwhile."""
        target = next_state(JobState.RUNNING, JobEvent.LEASE_EXPIRED).value
        return self._end_run(
            job_id,
            owner,
            target,
            "interrupted",
            "the process running it stopped",
            attempts=JobRow.attempts - 1,
            **progress,
        )

    def _end_run(
        self, job_id: int, owner: str, state: str, outcome: str, attempt_error: str, **values: Any
    ) -> bool:
        """Move a job ``owner`` runs to ``state`` and close its attempt with ``outcome``."""
        now = utcnow()
        with self.db.session() as s:
            done = s.execute(
                self._owned(job_id, owner).values(
                    state=state, lease_owner=None, lease_expires_at=None, updated=now, **values
                )
            )
            if rowcount(done) != 1:
                return False
            self._end_attempt(s, job_id, outcome, attempt_error, now)
        self.changes.changed(job_id)
        return True

    def _end_attempt(
        self, s: Session, job_id: int, outcome: str, error: str, now: datetime
    ) -> None:
        last = s.scalar(
            select(JobAttemptRow)
            .where(JobAttemptRow.job_id == job_id, JobAttemptRow.ended.is_(None))
            .order_by(JobAttemptRow.attempt.desc())
            .limit(1)
        )
        if last is not None:
            last.ended = now
            last.outcome = outcome
            last.error = error

    def transition(self, job_id: int, event: JobEvent, **values: Any) -> Job:
        """Apply a user or tick event to a job whatever runs it (cancel, retry, due).
        If the job moves meanwhile (an executor claims it), the event is applied
        again to its new state: a cancel must not fail because the job just started."""
        for _ in range(_TRANSITION_TRIES - 1):
            try:
                return self._transition_once(job_id, event, **values)
            except JobLost:
                continue
        return self._transition_once(job_id, event, **values)

    def _transition_once(self, job_id: int, event: JobEvent, **values: Any) -> Job:
        now = utcnow()
        with self.db.session() as s:
            row = s.get(JobRow, job_id)
            if row is None:
                raise NotFound(f"job {job_id} does not exist")
            before = row.state
            target = next_state(JobState(before), event)  # raises InvalidTransition
            done = s.execute(
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.state == before)
                .values(state=target.value, updated=now, **values)
            )
            if rowcount(done) != 1:
                raise JobLost(f"job {job_id} changed while it was being updated; try again")
            if before == JobState.RUNNING.value:
                self._end_attempt(s, job_id, target.value, values.get("error", ""), now)
            fresh = s.get(JobRow, job_id, populate_existing=True)
            assert fresh is not None
            job = Job.from_row(fresh)
        self.changes.changed(job_id)
        return job

    def prune(self, before: datetime, kinds: Iterable[str], limit: int) -> int:
        """Delete up to ``limit`` finished jobs of ``kinds`` last changed before ``before``
        (their files and attempts go with them: ON DELETE CASCADE); returns how many.
        The delete repeats the conditions, so a job retried meanwhile stays."""
        names = list(kinds)
        if not names:
            return 0
        finished = (
            JobRow.state.in_([state.value for state in FINAL_STATES]),
            JobRow.updated < before,
            JobRow.kind.in_(names),
        )
        with self.db.session() as s:
            ids = list(
                s.scalars(select(JobRow.id).where(*finished).order_by(JobRow.id).limit(limit))
            )
            if not ids:
                return 0
            done = s.execute(
                delete(JobRow)
                .where(JobRow.id.in_(ids), *finished)
                .execution_options(synchronize_session=False)
            )
            return rowcount(done)

    def due_retries(self, now: datetime) -> list[int]:
        with self.db.read() as s:
            return list(
                s.scalars(
                    select(JobRow.id).where(
                        JobRow.state == JobState.RETRYING.value, JobRow.next_run_at <= now
                    )
                ).all()
            )

    def expired_leases(self, now: datetime) -> list[int]:
        with self.db.read() as s:
            return list(
                s.scalars(
                    select(JobRow.id).where(
                        JobRow.state == JobState.RUNNING.value, JobRow.lease_expires_at < now
                    )
                ).all()
            )

    def expire_lease(self, job_id: int, now: datetime) -> JobState | None:
        """Take a job back from a dead worker: requeue it, or fail it if out of attempts."""
        with self.db.session() as s:
            row = s.get(JobRow, job_id)
            if row is None or row.state != JobState.RUNNING.value:
                return None
            if row.lease_expires_at is None or row.lease_expires_at >= now:
                return None
            out_of_attempts = row.attempts >= row.max_attempts
            event = JobEvent.FAIL if out_of_attempts else JobEvent.LEASE_EXPIRED
            target = next_state(JobState.RUNNING, event)
            error = (
                f"worker {row.lease_owner} stopped answering {row.attempts} times; giving up"
                if out_of_attempts
                else ""
            )
            done = s.execute(
                update(JobRow)
                .where(
                    JobRow.id == job_id,
                    JobRow.state == JobState.RUNNING.value,
                    JobRow.lease_owner == row.lease_owner,
                )
                .values(
                    state=target.value,
                    lease_owner=None,
                    lease_expires_at=None,
                    error=error,
                    updated=now,
                )
            )
            if rowcount(done) != 1:
                return None
            self._end_attempt(s, job_id, "lease_expired", "worker stopped answering", now)
        self.changes.changed(job_id)
        return target
