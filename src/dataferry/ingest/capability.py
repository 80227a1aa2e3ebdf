"""Wires ingest into the core: the ``ingest`` job kind, its service, the spool sweep."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dataferry.ingest import run
from dataferry.ingest.service import IngestService
from dataferry.ingest.tasks import KIND
from dataferry.jobs.registry import JobKind

if TYPE_CHECKING:
    from dataferry.app import Core

# One attempt is the upload itself (held by the front door), then up to three runs.
MAX_ATTEMPTS = 4
SWEEP_SECONDS = 60.0


def install(core: Core) -> None:
    service = IngestService(core)
    core.registry.register(
        JobKind(KIND, run.handler(service), queue="ingest", max_attempts=MAX_ATTEMPTS)
    )
    core.ingest = service

    def sweep() -> None:
        service.sweep()

    core.scheduler.add_periodic("ingest-spool-sweep", sweep, SWEEP_SECONDS)
