"""Runs one claimed job through its handler and records the outcome."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from dataferry.config import JobSettings
from dataferry.db.base import utcnow
from dataferry.errors import DataferryError, JobInterrupted, JobLost, TransientError
from dataferry.jobs.backoff import backoff_delay
from dataferry.jobs.context import JobContext
from dataferry.jobs.model import Job
from dataferry.jobs.registry import JobRegistry
from dataferry.jobs.states import JobEvent
from dataferry.jobs.store import JobStore

log = logging.getLogger(__name__)


class JobRunner:
    def __init__(self, store: JobStore, registry: JobRegistry, settings: JobSettings) -> None:
        self.store = store
        self.registry = registry
        self.settings = settings
        # Set when this process stops: running jobs end at their next check and go
        # back to the queue at once, instead of waiting for their lease to expire.
        self.stopping = threading.Event()

    def run(self, job: Job, owner: str) -> bool:
        """Run ``job`` (already claimed by ``owner``) to an outcome. True when the job
        went back to the queue instead (this process is stopping)."""
        kind = self.registry.get(job.kind)
        ctx = JobContext(
            job,
            self.store,
            owner,
            self.settings.lease_seconds,
            self.settings.progress_interval,
            self.stopping,
        )
        try:
            with ctx:
                result = kind.handler(ctx)
        except JobInterrupted:
            if self.store.hand_back(job.id, owner, **ctx.pending()):
                log.info("job %s: handed back to the queue (this process is stopping)", job.id)
                return True
            return False
        except JobLost:
            log.info("job %s: stopped, no longer ours (cancelled or taken over)", job.id)
            return False
        except TransientError as exc:
            self._retry_or_fail(job, owner, ctx, str(exc))
            return False
        except DataferryError as exc:
            self.store.finish(job.id, owner, JobEvent.FAIL, error=str(exc), **ctx.pending())
            return False
        except Exception as exc:
            log.exception("job %s: unexpected error", job.id)
            error = f"internal error: {type(exc).__name__}: {exc}"
            self.store.finish(job.id, owner, JobEvent.FAIL, error=error, **ctx.pending())
            return False
        progress = ctx.pending()
        if result is not None:
            progress["result"] = result
        self.store.finish(job.id, owner, JobEvent.SUCCEED, **progress)
        return False

    def _retry_or_fail(self, job: Job, owner: str, ctx: JobContext, error: str) -> None:
        attempt = job.attempts
        if attempt >= job.max_attempts:
            message = f"{error} (gave up after {attempt} attempts)"
            self.store.finish(job.id, owner, JobEvent.FAIL, error=message, **ctx.pending())
            return
        delay = backoff_delay(attempt, self.settings.backoff_base, self.settings.backoff_cap)
        self.store.finish(
            job.id,
            owner,
            JobEvent.RETRY_LATER,
            error=error,
            next_run_at=utcnow() + timedelta(seconds=delay),
            **ctx.pending(),
        )
