"""Celery executor: jobs run on ``dataferry worker`` processes on any machine.

A message carries only a job id (and the instance id, so a broker shared by two
installations cannot make one run the other's job 7). The database row stays the
source of truth: a worker that receives a message *claims* the row with one
guarded UPDATE and runs it only if the claim wins, so a message delivered twice
(broker redelivery, a re-dispatch by the tick) runs the job once. Messages are
acknowledged after the run (``acks_late``); a worker that dies mid-job leaves a
lease that expires, and the scheduler tick (a Celery beat schedule) re-queues the
job and sends it again. A message the broker lost is sent again by the tick
because its row is still ``queued``.

Celery is imported lazily: the inline executor never needs it.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from dataferry.jobs.executor import claim_owner

if TYPE_CHECKING:
    from celery import Celery

    from dataferry.app import Core
    from dataferry.config import Settings

log = logging.getLogger(__name__)

RUN_TASK = "dataferry.run_job"
TICK_TASK = "dataferry.tick"


def make_celery(settings: Settings) -> Celery:
    """The Celery application for these settings (producer and worker alike)."""
    from celery import Celery

    c = settings.celery
    app = Celery("dataferry", broker=settings.broker_url, set_as_current=False)
    tick_every = settings.jobs.tick_seconds
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        # At-least-once: acknowledge after the run, so a message whose worker died
        # is delivered again (the atomic claim makes the second delivery harmless).
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        worker_prefetch_multiplier=1,
        # A running job survives a broker outage: its row, not the message, says it is done.
        worker_cancel_long_running_tasks_on_connection_loss=False,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,  # a broker that restarts comes back
        broker_connection_timeout=c.publish_timeout,
        broker_transport_options={
            "visibility_timeout": c.visibility_timeout,
            "socket_connect_timeout": c.publish_timeout,
        },
        task_default_queue=c.broker_queue("default"),
        task_create_missing_queues=True,
        beat_schedule={
            "dataferry-tick": {
                "task": TICK_TASK,
                "schedule": tick_every,
                # A tick nobody took in time is useless: the next one does the same.
                "options": {"queue": c.tick_queue, "expires": max(2 * tick_every, 1.0)},
            }
        },
    )
    return app


class CeleryExecutor:
    """The producer side: ``dispatch`` sends a job id to the job's broker queue.

    A dispatch is a hint: if the broker is unreachable it is logged and dropped,
    and the scheduler tick sends it again while the row is still queued."""

    def __init__(self, app: Celery, settings: Settings, instance_id: str) -> None:
        self.app = app
        self.settings = settings
        self.instance_id = instance_id

    def start(self) -> None: ...

    def stop(self) -> None:
        self.app.close()

    def dispatch(self, job_id: int, queue: str) -> None:
        timeout = self.settings.celery.publish_timeout
        try:
            self.app.send_task(
                RUN_TASK,
                args=[job_id],
                kwargs={"instance": self.instance_id},
                queue=self.settings.celery.broker_queue(queue),
                retry=True,
                retry_policy={
                    "max_retries": 2,
                    "interval_start": 0,
                    "interval_step": timeout / 4,
                    "interval_max": timeout / 2,
                },
            )
        except Exception as exc:
            log.warning("job %s: broker unreachable (%s); the tick will send it again", job_id, exc)

    def pending(self, queue: str) -> int | None:
        """Messages waiting in a job queue's broker queue; None if the broker can't tell."""
        from amqp.exceptions import ChannelError

        name = self.settings.celery.broker_queue(queue)
        try:
            with self.app.connection_for_write() as conn:
                conn.ensure_connection(max_retries=1)
                declared = conn.default_channel.queue_declare(name, passive=True)
                return int(declared.message_count)
        except ChannelError as exc:
            if str(getattr(exc, "reply_code", "")) == "404":  # never declared, or (Redis) empty
                return 0
            log.info("could not count messages in %s: %s", name, exc)
            return None
        except Exception as exc:
            log.info("could not count messages in %s: %s", name, exc)
            return None


def install_tasks(app: Celery, core: Core) -> None:
    """Register the worker-side tasks, bound to this process's core (once per app)."""
    if RUN_TASK in app.tasks:
        return
    tick_lock = threading.Lock()
    served = core.instance_id
    lease = core.settings.jobs.lease_seconds

    @app.task(name=RUN_TASK, acks_late=True, ignore_result=True, shared=False)  # type: ignore[untyped-decorator]
    def run_job(job_id: int, instance: str = "") -> str:
        if instance and instance != served:
            log.error(
                "job %s: message from instance %s, but this worker serves %s; "
                "two installations share a broker queue: give them distinct "
                "celery.queue_prefix values",
                job_id,
                instance,
                served,
            )
            return "foreign"
        owner = claim_owner(core.node)
        job = core.job_store.claim(job_id, owner, lease)
        if job is None:  # already run, running elsewhere, cancelled or unknown
            return "not claimed"
        if core.runner.run(job, owner):
            # Handed back by a worker that is stopping: send it to the others now
            # rather than wait for the tick's re-dispatch.
            core.executor.dispatch(job.id, job.queue)
            return "handed back"
        return "ran"

    @app.task(name=TICK_TASK, acks_late=False, ignore_result=True, shared=False)  # type: ignore[untyped-decorator]
    def tick() -> dict[str, Any]:
        # Two ticks at once in one process would only repeat each other's work.
        if not tick_lock.acquire(blocking=False):
            return {}
        try:
            return core.scheduler.tick()
        finally:
            tick_lock.release()
