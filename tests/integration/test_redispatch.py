"""The tick's re-dispatch of jobs still queued (a message the broker lost)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import update

from dataferry.db.base import utcnow
from dataferry.db.models import JobRow
from dataferry.jobs.registry import JobKind


class Recorder:
    """An executor that records dispatches and reports a broker backlog."""

    def __init__(self) -> None:
        self.sent: list[int] = []
        self.backlog: int | None = 3

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def dispatch(self, job_id: int, queue: str) -> None:
        self.sent.append(job_id)

    def pending(self, queue: str) -> int | None:
        return self.backlog


def test_resent_when_the_broker_queue_is_empty_and_at_most_every_redispatch_seconds(
    core: Any,
) -> None:
    core.registry.register(JobKind("noop", lambda ctx: None, queue="q"))
    job = core.jobs.submit("noop", {})
    with core.db.session() as s:
        s.execute(
            update(JobRow).where(JobRow.id == job.id).values(updated=utcnow() - timedelta(hours=1))
        )
    rec = Recorder()
    core.scheduler.executor = rec
    core.scheduler.redispatch_seconds = 3600
    # Messages still wait in the broker queue: this job's may be among them.
    assert core.scheduler.tick()["redispatched"] == 0
    rec.backlog = 0
    assert core.scheduler.tick()["redispatched"] == 1
    assert rec.sent == [job.id]
    # Sent once: not again before redispatch_seconds.
    assert core.scheduler.tick()["redispatched"] == 0
    # A broker that cannot tell (None) does not stop the re-dispatch.
    core.scheduler.redispatch_seconds = 0.001
    rec.backlog = None
    assert core.scheduler.tick()["redispatched"] == 1
