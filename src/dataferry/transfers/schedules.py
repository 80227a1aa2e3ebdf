"""Schedules: a transfer submitted again every so often (Globus Timers; rclone under
cron). Runs fall on ``start + k * every``; the scheduler tick submits a due run as a
transfer job. Runs missed while the service was down make one run, not a burst; a
run that falls while the previous run's job is still going is skipped (two jobs
would write the same files), and so is one whose transfer no longer checks out (an
endpoint removed): each is counted and said in ``last_error``."""

from __future__ import annotations

import builtins
import logging
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from dataferry.db.base import utcnow
from dataferry.db.engine import Database
from dataferry.db.models import JobRow, ScheduleRow
from dataferry.endpoints.service import NAME_RE
from dataferry.errors import Conflict, DataferryError, InvalidRequest, NotFound
from dataferry.jobs.model import Job
from dataferry.jobs.service import JobService
from dataferry.jobs.states import JobState
from dataferry.transfers.request import TransferRequest
from dataferry.transfers.service import KIND, TransferService

log = logging.getLogger(__name__)

MIN_EVERY = 60.0  # seconds: a transfer every minute is already a lot
MAX_EVERY = 366 * 86400.0
_ACTIVE = (JobState.QUEUED.value, JobState.RUNNING.value, JobState.RETRYING.value)


@dataclass(frozen=True)
class Schedule:
    name: str
    transfer: dict[str, Any]
    every: float
    start: datetime
    next_run: datetime
    paused: bool
    runs: int
    skipped: int
    last_run: datetime | None
    last_job_id: int | None
    last_error: str
    created: datetime

    @classmethod
    def from_row(cls, row: ScheduleRow) -> Schedule:
        return cls(
            row.name,
            dict(row.transfer),
            row.every,
            row.start,
            row.next_run,
            row.paused,
            row.runs,
            row.skipped,
            row.last_run,
            row.last_job_id,
            row.last_error,
            row.created,
        )

    def document(self) -> dict[str, Any]:
        def when(t: datetime | None) -> str | None:
            return t.isoformat() if t is not None else None

        return {
            "name": self.name,
            "transfer": self.transfer,
            "every": self.every,
            "start": when(self.start),
            "next_run": None if self.paused else when(self.next_run),
            "paused": self.paused,
            "runs": self.runs,
            "skipped": self.skipped,
            "last_run": when(self.last_run),
            "last_job_id": self.last_job_id,
            "last_error": self.last_error,
            "created": when(self.created),
        }


def check_every(every: Any) -> float:
    if (
        isinstance(every, bool)
        or not isinstance(every, (int, float))
        or not math.isfinite(every)
        or not MIN_EVERY <= every <= MAX_EVERY
    ):
        raise InvalidRequest(
            f"every must be a number of seconds from {MIN_EVERY:g} (a minute) to "
            f"{MAX_EVERY:.0f} (366 days), not {str(every)[:40]!r}"
        )
    return float(every)


def check_start(start: Any) -> datetime | None:
    """An ISO 8601 time with its zone (``2026-12-09T02:00:00Z``), or None: now."""
    if start is None:
        return None
    if isinstance(start, datetime):
        when = start
    elif isinstance(start, str):
        try:
            when = datetime.fromisoformat(start)
        except ValueError:
            raise InvalidRequest(
                f"start {start[:60]!r} is not an ISO 8601 time (e.g. 2026-12-09T02:00:00Z)"
            ) from None
    else:
        raise InvalidRequest(f"start must be an ISO 8601 time as text, not {str(start)[:40]!r}")
    if when.tzinfo is None:
        raise InvalidRequest(
            f"start {str(start)[:60]!r} has no time zone: add one (Z for UTC, or +01:00)"
        )
    return when.astimezone(UTC)


def next_slot(start: datetime, every: float, now: datetime) -> datetime:
    """The first run time ``start + k * every`` (k >= 0) after ``now``; ``start`` if it
    is still to come."""
    if start > now:
        return start
    k = math.floor((now - start).total_seconds() / every) + 1
    return start + timedelta(seconds=k * every)


def _made(job: Job, at: datetime) -> dict[str, Any]:
    """What a schedule records of a run it made (a job), as column values."""
    return {"runs": ScheduleRow.runs + 1, "last_run": at, "last_job_id": job.id, "last_error": ""}


class ScheduleService:
    def __init__(self, db: Database, jobs: JobService, transfers: TransferService) -> None:
        self.db = db
        self.jobs = jobs
        self.transfers = transfers

    def add(self, name: Any, req: TransferRequest, every: Any, start: Any = None) -> Schedule:
        """A new schedule; its transfer is checked now as a submit would check it."""
        if not isinstance(name, str) or not NAME_RE.fullmatch(name):
            raise InvalidRequest(
                f"schedule name {str(name)[:60]!r} must be 1-128 letters, digits, '.', '_' or '-'"
            )
        seconds = check_every(every)
        first = check_start(start) or utcnow()
        self.transfers.validate(req)
        row = ScheduleRow(
            name=name,
            transfer=req.params(),
            every=seconds,
            start=first,
            next_run=first,
            paused=False,
            runs=0,
            skipped=0,
            last_error="",
            created=utcnow(),
        )
        try:
            with self.db.session() as s:
                if s.scalar(select(ScheduleRow.id).where(ScheduleRow.name == name)) is not None:
                    raise Conflict(f"schedule {name!r} already exists")
                s.add(row)
                s.flush()
                return Schedule.from_row(row)
        except IntegrityError as exc:  # the same name added at the same moment
            raise Conflict(f"schedule {name!r} already exists") from exc

    def list(self) -> list[Schedule]:
        with self.db.read() as s:
            rows = s.scalars(select(ScheduleRow).order_by(ScheduleRow.name))
            return [Schedule.from_row(r) for r in rows]

    @staticmethod
    def _row(s: Any, name: str) -> ScheduleRow:
        row: ScheduleRow | None = s.scalar(select(ScheduleRow).where(ScheduleRow.name == name))
        if row is None:
            raise NotFound(f"schedule {name!r} does not exist")
        return row

    def get(self, name: str) -> Schedule:
        with self.db.read() as s:
            return Schedule.from_row(self._row(s, name))

    def remove(self, name: str) -> None:
        """The schedule goes; jobs it submitted stay (a running one runs to its end)."""
        with self.db.session() as s:
            s.delete(self._row(s, name))

    def pause(self, name: str) -> Schedule:
        with self.db.session() as s:
            row = self._row(s, name)
            row.paused = True
            s.flush()
            return Schedule.from_row(row)

    def resume(self, name: str) -> Schedule:
        """Runs again from its next slot after now: what fell while paused is not made up."""
        with self.db.session() as s:
            row = self._row(s, name)
            if row.paused:
                row.paused = False
                row.next_run = next_slot(row.start, row.every, utcnow())
            s.flush()
            return Schedule.from_row(row)

    def run_now(self, name: str) -> Job:
        """Submit the schedule's transfer at once (its slots stay as they are); refused
        while the job of its previous run is still going."""
        schedule = self.get(name)
        active = self._active_job(schedule.last_job_id)
        if active is not None:
            job_id, state = active
            raise Conflict(f"schedule {name!r}: job {job_id} of its previous run is still {state}")
        params = self._params(schedule)
        with self.db.session() as s:
            self._row(s, name)  # removed meanwhile: a 404, and no job
            job = self._create(s, params)
            s.execute(
                update(ScheduleRow).where(ScheduleRow.name == name).values(**_made(job, utcnow()))
            )
        self.jobs.executor.dispatch(job.id, job.queue)
        return job

    def run_due(self, now: datetime | None = None) -> builtins.list[int]:
        """The scheduler tick's part: submit every due run; the ids of the jobs made.
        Each run is claimed by moving ``next_run`` on from the value read, in the same
        transaction that makes its job: of processes ticking at once, one makes it."""
        now = now or utcnow()
        with self.db.read() as s:
            due = [
                Schedule.from_row(r)
                for r in s.scalars(
                    select(ScheduleRow).where(
                        ScheduleRow.paused.is_(False), ScheduleRow.next_run <= now
                    )
                )
            ]
        made: builtins.list[Job] = []
        for schedule in due:
            try:
                job = self._run_due(schedule, now)
            except Exception:  # one schedule's fault must not hold up the others
                log.exception(
                    "schedule %s: its due run failed; the next tick tries again", schedule.name
                )
                continue
            if job is not None:
                made.append(job)
        for job in made:
            self.jobs.executor.dispatch(job.id, job.queue)
        return [job.id for job in made]

    def _run_due(self, schedule: Schedule, now: datetime) -> Job | None:
        at = schedule.next_run
        params: dict[str, Any] | None = None
        active = self._active_job(schedule.last_job_id)
        if active is not None:
            error = (
                f"the run due at {at.isoformat()} was skipped: job {active[0]} of the "
                f"previous run was still {active[1]}"
            )
        else:
            try:
                params = self._params(schedule)
                error = ""
            except DataferryError as exc:
                error = f"the run due at {at.isoformat()} was skipped: {exc.message}"
        following = next_slot(schedule.start, schedule.every, now)
        with self.db.session() as s:
            claimed = s.execute(
                update(ScheduleRow)
                .where(
                    ScheduleRow.name == schedule.name,
                    ScheduleRow.next_run == at,
                    ScheduleRow.paused.is_(False),
                )
                .values(next_run=following)
            )
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                return None  # another process made this run, or it was paused/removed
            job = None
            outcome: dict[str, Any] = {"skipped": ScheduleRow.skipped + 1, "last_error": error}
            if params is not None:
                job = self._create(s, params)
                outcome = _made(job, now)
            s.execute(
                update(ScheduleRow).where(ScheduleRow.name == schedule.name).values(**outcome)
            )
        if error:
            log.warning("schedule %s: %s", schedule.name, error)
        return job

    def _params(self, schedule: Schedule) -> dict[str, Any]:
        """The job parameters of a run: the transfer checked as a submit checks it."""
        params = self.transfers.validate(TransferRequest.from_params(schedule.transfer))
        params["schedule"] = schedule.name
        return params

    def _create(self, s: Any, params: dict[str, Any]) -> Job:
        spec = self.jobs.registry.get(KIND)
        return self.jobs.store.create(
            KIND,
            params,
            queue=spec.queue,
            max_attempts=spec.max_attempts or self.jobs.settings.max_attempts,
            session=s,
        )

    def _active_job(self, job_id: int | None) -> tuple[int, str] | None:
        """(id, state) of the job a schedule made last, if it is still going."""
        if job_id is None:
            return None
        with self.db.read() as s:
            state = s.scalar(select(JobRow.state).where(JobRow.id == job_id))
        return (job_id, state) if state in _ACTIVE else None
