"""Composition: builds the core (database, job engine, capabilities) once, for
``serve``, a Celery worker or a test alike, and starts the background parts."""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError

from dataferry.api.rpc.registry import RpcRegistry
from dataferry.config import Settings
from dataferry.db import migrate
from dataferry.db.engine import Database
from dataferry.db.models import MetaRow
from dataferry.endpoints.secrets import SecretBox
from dataferry.endpoints.service import EndpointService
from dataferry.errors import ConfigurationError
from dataferry.jobs.executor import Executor, node_name
from dataferry.jobs.registry import JobRegistry
from dataferry.jobs.runner import JobRunner
from dataferry.jobs.scheduler import Scheduler
from dataferry.jobs.service import JobService, NoExecutor
from dataferry.jobs.store import JobStore

if TYPE_CHECKING:
    from celery import Celery

    from dataferry.datasets.consumer import ConsumerService
    from dataferry.datasets.peerfiles import PeerFiles
    from dataferry.datasets.provider import ProviderService
    from dataferry.datasets.sites import SiteService
    from dataferry.ingest.service import IngestService
    from dataferry.mover.service import MoverService
    from dataferry.records.capability import SyncService
    from dataferry.records.discovery import Discovery
    from dataferry.records.peers import PeerService
    from dataferry.records.protocol import ProtocolService
    from dataferry.records.replication import Replicator
    from dataferry.records.service import RecordService
    from dataferry.sinks.service import SinkService
    from dataferry.transfers.schedules import ScheduleService
    from dataferry.transfers.service import TransferService

log = logging.getLogger(__name__)

# How often the scheduler prunes old finished jobs (jobs.keep_finished_days).
PRUNE_SECONDS = 3600.0


def _capabilities() -> list[Any]:
    from dataferry.api.rpc import core_methods
    from dataferry.datasets import capability as datasets
    from dataferry.ingest import capability as ingest
    from dataferry.mover import capability as mover
    from dataferry.records import capability as records
    from dataferry.sinks import capability as sinks
    from dataferry.transfers import capability as transfers

    return [
        transfers.install,
        core_methods.install,
        datasets.install,
        records.install,
        sinks.install,
        mover.install,
        ingest.install,
    ]


class Core:
    """Every service module, built once per process from the settings."""

    transfers: TransferService
    schedules: ScheduleService
    ingest: IngestService
    records: RecordService
    peers: PeerService
    replication: Replicator
    replication_protocol: ProtocolService
    sync: SyncService
    discovery: Discovery | None
    sites: SiteService
    peer_files: PeerFiles
    provider: ProviderService
    consumer: ConsumerService
    mover: MoverService
    sinks: SinkService

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.node = node_name(settings.node_name)
        self.db = Database(settings.database_url)
        self.registry = JobRegistry()
        self.job_store = JobStore(self.db)
        self.jobs = JobService(self.job_store, self.registry, settings.jobs)
        self.runner = JobRunner(self.job_store, self.registry, settings.jobs)
        self.box = SecretBox.from_settings(settings.secret_key, settings.key_file)
        self.endpoints = EndpointService(self.db, self.box)
        self.executor: Executor = NoExecutor()
        self.scheduler = Scheduler(
            self.job_store,
            self.executor,
            settings.jobs.tick_seconds,
            settings.celery.redispatch_seconds if settings.executor == "celery" else None,
        )
        self._celery: Celery | None = None
        self.rpc = RpcRegistry()  # capabilities register their RPC methods here
        # Long-running parts capabilities add (start()/stop()), run beside the executor.
        self.background: list[Any] = []
        # Extra Prometheus collectors capabilities add to /metrics.
        self.collectors: list[Any] = []
        for install in _capabilities():
            install(self)
        if settings.jobs.keep_finished_days:
            days = settings.jobs.keep_finished_days
            self.scheduler.add_periodic("jobs-prune", lambda: self._prune(days), PRUNE_SECONDS)

    def _prune(self, days: float) -> None:
        pruned = self.jobs.prune(days)
        if pruned:
            log.info("deleted %d finished jobs older than %g days", pruned, days)

    @property
    def instance_id(self) -> str:
        with self.db.read() as s:
            value = s.scalar(select(MetaRow.value).where(MetaRow.key == "instance_id"))
            return value or ""

    def use_executor(self, executor: Executor) -> None:
        self.executor = executor
        self.jobs.executor = executor
        self.scheduler.executor = executor

    @property
    def celery(self) -> Celery:
        """This process's Celery application (``executor = "celery"`` only)."""
        if self._celery is None:
            from dataferry.jobs.executors.celery import make_celery

            self._celery = make_celery(self.settings)
        return self._celery

    def use_celery(self) -> None:
        """Dispatch jobs to Celery workers (``serve``, a worker's tick, beat)."""
        from dataferry.jobs.executors.celery import CeleryExecutor

        self.use_executor(CeleryExecutor(self.celery, self.settings, self.instance_id))

    def start(self) -> None:
        """Start running jobs: executor threads and the scheduler tick (inline), or
        dispatch to Celery workers, whose beat schedule runs the tick (celery)."""
        if self.settings.executor == "celery":
            self.use_celery()
            self.executor.start()
            for part in self.background:
                part.start()
            return
        from dataferry.jobs.executors.inline import InlineExecutor

        self.use_executor(
            InlineExecutor(
                self.job_store,
                self.runner,
                self.node,
                self.settings.jobs.workers,
                self.settings.jobs.lease_seconds,
            )
        )
        self.executor.start()
        self.scheduler.start()
        for part in self.background:
            part.start()

    def stop(self) -> None:
        for part in reversed(self.background):
            part.stop()
        self.scheduler.stop()
        self.executor.stop()
        self.db.dispose()


def init_db(settings: Settings) -> str:
    """Create or upgrade the schema, the secret key file and the instance id; idempotent.

    Returns the instance id."""
    try:
        settings.home.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigurationError(
            f"cannot create the home folder {settings.home}: {exc.strerror or exc}"
        ) from None
    SecretBox.from_settings(settings.secret_key, settings.key_file)
    db = Database(settings.database_url)
    try:
        try:
            migrate.upgrade(db.engine)
        except OperationalError as exc:  # not there, refused, wrong password ...
            shown = db.engine.url.render_as_string(hide_password=True)
            first_line = str(exc.orig or exc).strip().splitlines()[0]
            raise ConfigurationError(f"cannot reach the database {shown}: {first_line}") from None
        try:
            with db.session() as s:
                row = s.get(MetaRow, "instance_id")
                if row is None:
                    row = MetaRow(key="instance_id", value=str(uuid.uuid4()))
                    s.add(row)
                return row.value
        except IntegrityError:  # another process created it first: use theirs
            with db.read() as s:
                value = s.scalar(select(MetaRow.value).where(MetaRow.key == "instance_id"))
                assert value is not None
                return value
    finally:
        db.dispose()


def build(settings: Settings, *, upgrade: bool = True) -> Core:
    if upgrade:
        init_db(settings)
    return Core(settings)
