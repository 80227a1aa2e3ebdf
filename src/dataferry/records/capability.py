"""Wires records into the core: the records service, peers, the replication
protocol, the ``replicate`` job kind, the sync schedule and discovery."""

from __future__ import annotations

import atexit
import logging
from typing import TYPE_CHECKING, Any

from dataferry.db.base import utcnow
from dataferry.errors import InvalidRequest, TransientError
from dataferry.jobs.model import Job
from dataferry.jobs.registry import JobKind
from dataferry.jobs.service import JobService
from dataferry.records import rpc
from dataferry.records.model import check_collection
from dataferry.records.peers import PeerService
from dataferry.records.protocol import ProtocolService
from dataferry.records.replication import KIND, Replicator
from dataferry.records.service import RecordService

if TYPE_CHECKING:
    from dataferry.app import Core
    from dataferry.jobs.context import JobContext

log = logging.getLogger(__name__)

ACTIVE = ("queued", "running", "retrying")


class SyncService:
    """Submits ``replicate`` jobs: on demand, and from the scheduler when a peer is due."""

    def __init__(self, jobs: JobService, peers: PeerService, replicator: Replicator) -> None:
        self.jobs = jobs
        self.peers = peers
        self.replicator = replicator

    def submit(self, peer: str, collections: list[str] | None = None) -> Job:
        self.peers.get(peer)  # 404 before a job exists
        cols = [check_collection(c) for c in collections or []]
        return self.jobs.submit(KIND, {"peer": peer, "collections": cols})

    def active_peers(self) -> set[str]:
        names: set[str] = set()
        for state in ACTIVE:
            jobs, _ = self.jobs.page(state=state, kind=KIND, limit=1000)
            names |= {str(j.params.get("peer")) for j in jobs}
        return names

    def schedule_due(self) -> None:
        self.submit_due()

    def submit_due(self) -> list[int]:
        """Submit a sync for every peer whose interval has elapsed (one at a time per peer)."""
        busy = self.active_peers()
        out = []
        for name in self.peers.due(utcnow()):
            if name in busy:
                continue
            self.peers.attempted(name)
            out.append(self.submit(name).id)
        return out

    def handler(self, ctx: JobContext) -> dict[str, Any]:
        peer = str(ctx.params.get("peer", ""))
        cols = list(ctx.params.get("collections") or [])
        try:
            return self.replicator.sync(peer, cols or None, progress=ctx.progress)
        except InvalidRequest:
            raise
        except OSError as exc:
            raise TransientError(f"sync with {peer}: {exc}") from exc


def install(core: Core) -> None:
    settings = core.settings.records
    core.records = RecordService(core.db, settings)
    core.peers = PeerService(core.db, core.box, settings.sync_interval)
    core.replication = Replicator(core.records, core.peers, settings)
    core.replication_protocol = ProtocolService(core.records, settings)
    core.sync = SyncService(core.jobs, core.peers, core.replication)
    core.registry.register(JobKind(KIND, core.sync.handler, queue="records", prunable=True))
    rpc.register(core)
    core.discovery = None
    if settings.discovery:
        from dataferry.records.discovery import Discovery

        discovery = Discovery(
            core.records.instance_id,
            core.settings.host,
            core.settings.port,
            settings.owner,
            settings.contact,
        )
        core.discovery = discovery
        # A background part starts with the server (serve, the API host), never in a
        # Celery worker, whose tick runs elsewhere: the API is what peers reach.
        core.background.append(discovery)
        atexit.register(discovery.stop)
    core.scheduler.add_periodic("records-sync-schedule", core.sync.schedule_due, every=5.0)
