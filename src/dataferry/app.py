"""Composition: builds the core (database, job engine, capabilities) once, for
``serve``, a Celery worker or a test alike, and starts the background parts."""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from dataferry.config import Settings
from dataferry.db import migrate
from dataferry.db.engine import Database
from dataferry.db.models import MetaRow
from dataferry.endpoints.secrets import SecretBox
from dataferry.endpoints.service import EndpointService
from dataferry.jobs.executor import Executor, node_name
from dataferry.jobs.registry import JobRegistry
from dataferry.jobs.runner import JobRunner
from dataferry.jobs.scheduler import Scheduler
from dataferry.jobs.service import JobService, NoExecutor
from dataferry.jobs.store import JobStore

if TYPE_CHECKING:
    from dataferry.datasets.consumer import ConsumerService
    from dataferry.datasets.peerfiles import PeerFiles
    from dataferry.datasets.provider import ProviderService
    from dataferry.datasets.sites import SiteService
    from dataferry.ingest.service import IngestService
    from dataferry.transfers.service import TransferService

log = logging.getLogger(__name__)


def _capabilities() -> list[Any]:
    from dataferry.datasets import capability as datasets
    from dataferry.ingest import capability as ingest
    from dataferry.transfers import capability as transfers

    return [transfers.install, datasets.install, ingest.install]


class Core:
    """Every service module, built once per process from the settings."""

    transfers: TransferService
    ingest: IngestService
    sites: SiteService
    peer_files: PeerFiles
    provider: ProviderService
    consumer: ConsumerService

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
        self.scheduler = Scheduler(self.job_store, self.executor, settings.jobs.tick_seconds)
        for install in _capabilities():
            install(self)

    @property
    def instance_id(self) -> str:
        with self.db.read() as s:
            value = s.scalar(select(MetaRow.value).where(MetaRow.key == "instance_id"))
            return value or ""

    def use_executor(self, executor: Executor) -> None:
        self.executor = executor
        self.jobs.executor = executor
        self.scheduler.executor = executor

    def start(self) -> None:
        """Start running jobs (executor threads) and the scheduler tick."""
        if self.settings.executor == "inline":
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
        else:
            raise NotImplementedError(f"executor {self.settings.executor!r} is not available yet")
        self.executor.start()
        self.scheduler.start()

    def stop(self) -> None:
        self.scheduler.stop()
        self.executor.stop()
        self.db.dispose()


def init_db(settings: Settings) -> str:
    """Create or upgrade the schema, the secret key file and the instance id; idempotent.

    Returns the instance id."""
    settings.home.mkdir(parents=True, exist_ok=True)
    SecretBox.from_settings(settings.secret_key, settings.key_file)
    db = Database(settings.database_url)
    try:
        migrate.upgrade(db.engine)
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
