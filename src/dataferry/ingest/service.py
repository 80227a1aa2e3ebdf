"""The ingest operations every front door calls: receive an upload into the
spool, start a move, report a job in Pacifica's shape, read transactions."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dataferry.config import IngestSettings
from dataferry.endpoints.backends.local import LocalEndpointFS
from dataferry.endpoints.filesystem import EndpointFS
from dataferry.errors import InvalidRequest, NotFound
from dataferry.ingest.metadata import decode_json
from dataferry.ingest.run import PARTIAL_NAME, UPLOAD_NAME
from dataferry.ingest.store import ArchivedFile, TransactionStore
from dataferry.ingest.tasks import KIND, UPLOADING
from dataferry.jobs.context import JobContext
from dataferry.jobs.executor import claim_owner
from dataferry.jobs.model import Job
from dataferry.jobs.states import JobEvent, JobState

if TYPE_CHECKING:
    from dataferry.app import Core

log = logging.getLogger(__name__)

MOVE_MAX_BYTES = 16 * 1024 * 1024
LOCAL_ARCHIVE = "(local archive)"


class UploadTooLarge(Exception):
    pass


class Upload:
    """One request body being spooled for its (already running) ingest job.

    Its job is held by the front door's lease while the body arrives; a heartbeat
    keeps the lease, so if this process dies the scheduler takes the job back and
    the handler fails it cleanly ("the upload did not complete")."""

    def __init__(self, service: IngestService, job: Job, owner: str, declared: int | None):
        self.service = service
        self.job = job
        self.owner = owner
        self.declared = declared
        self.limit = service.settings.max_upload_bytes
        self.received = 0
        self.over_limit = False
        self.folder = service.spool_of(job.id)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.partial = self.folder / PARTIAL_NAME
        self._file = open(self.partial, "wb", buffering=0)  # noqa: SIM115 (closed in end())
        js = service.core.settings.jobs
        # Progress is stored by the heartbeat thread only: the event loop never waits on
        # the database while a body streams in.
        self.ctx = JobContext(job, service.core.job_store, owner, js.lease_seconds, 1e9)
        self.ctx.__enter__()

    @property
    def job_id(self) -> int:
        return self.job.id

    def write(self, chunks: list[bytes]) -> None:
        """Append chunks to the spool file (called off the event loop)."""
        for chunk in chunks:
            self.received += len(chunk)
            if self.received > self.limit:
                self.over_limit = True
            if self.over_limit:
                continue  # drained, not kept
            view = memoryview(chunk)
            while view:
                n = self._file.write(view)
                assert n is not None
                view = view[n:]
        percent = 100.0 * self.received / self.declared if self.declared else 0.0
        self.ctx.progress(task=UPLOADING, task_percent=min(percent, 99.9), bytes_done=self.received)

    def complete(self) -> Job:
        """The whole body arrived: make it durable, then hand the job to the executors."""
        if self.over_limit:
            return self.fail(self.too_large_message())
        if self.declared is not None and self.received != self.declared:
            return self.fail(f"the upload stopped after {self.received} of {self.declared} bytes")
        os.fsync(self._file.fileno())
        self._file.close()
        os.replace(self.partial, self.folder / UPLOAD_NAME)
        self.ctx.__exit__(None, None, None)
        store = self.service.core.job_store
        store.finish(
            self.job.id,
            self.owner,
            JobEvent.LEASE_EXPIRED,  # running -> queued: any executor takes it from here
            task=UPLOADING,
            task_percent=100.0,
            bytes_done=self.received,
        )
        job = store.get(self.job.id)
        self.service.core.jobs.executor.dispatch(job.id, job.queue)
        return job

    def too_large_message(self) -> str:
        size = self.declared if self.declared is not None else self.received
        return (
            f"the upload is larger than the configured limit of {self.limit} bytes "
            f"(ingest.max_upload_bytes); {'declared' if self.declared else 'sent at least'} "
            f"{size} bytes"
        )

    def fail(self, message: str) -> Job:
        """Refuse the upload: nothing stays in the spool, the job fails at UPLOADING."""
        try:
            self._file.close()
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.ctx.__exit__(None, None, None)
            self.service.core.job_store.finish(
                self.job.id,
                self.owner,
                JobEvent.FAIL,
                error=message,
                task=UPLOADING,
                bytes_done=self.received,
            )
        return self.service.core.job_store.get(self.job.id)


class IngestService:
    def __init__(self, core: Core) -> None:
        self.core = core
        self.settings: IngestSettings = core.settings.ingest
        self.transactions = TransactionStore(core.db)
        self.spool_root = (
            Path(self.settings.spool_dir).expanduser()
            if self.settings.spool_dir
            else core.settings.home / "spool" / "ingest"
        )

    # -- places ------------------------------------------------------------------
    def spool_of(self, job_id: int) -> Path:
        return self.spool_root / str(job_id)

    @property
    def archive_name(self) -> str:
        return self.settings.archive_endpoint or LOCAL_ARCHIVE

    def open_archive(self) -> tuple[EndpointFS, str]:
        if self.settings.archive_endpoint:
            name = self.settings.archive_endpoint
            return self.core.endpoints.open(name), name
        root = self.core.settings.home / "archive"
        root.mkdir(parents=True, exist_ok=True)
        return LocalEndpointFS(LOCAL_ARCHIVE, str(root), {}), LOCAL_ARCHIVE

    def open_staging(self) -> EndpointFS:
        if not self.settings.staging_endpoint:
            raise InvalidRequest(
                "no staging endpoint is configured (ingest.staging_endpoint): /move is off"
            )
        return self.core.endpoints.open(self.settings.staging_endpoint)

    # -- doors -------------------------------------------------------------------
    def _start(self, params: dict[str, Any]) -> tuple[Job, str]:
        owner = claim_owner(f"{self.core.node}/door")
        spec = self.core.registry.get(KIND)
        job = self.core.job_store.create_claimed(
            KIND,
            params,
            owner,
            self.core.settings.jobs.lease_seconds,
            queue=spec.queue,
            max_attempts=spec.max_attempts or self.core.settings.jobs.max_attempts,
            task=UPLOADING,
            task_percent=0.0,
        )
        return job, owner

    def begin_upload(self, declared: int | None) -> Upload:
        """Start an ingest job whose body the caller is about to stream in."""
        job, owner = self._start({"origin": "upload", "declared_bytes": declared})
        upload = Upload(self, job, owner, declared)
        return upload

    def move(self, body: bytes) -> Job:
        """Start an ingest of files already on the staging endpoint (``POST /move``)."""
        if len(body) > MOVE_MAX_BYTES:
            raise InvalidRequest(f"the metadata document is larger than {MOVE_MAX_BYTES} bytes")
        params: dict[str, Any] = {"origin": "move"}
        try:
            params["metadata"] = decode_json(body)
        except ValueError as exc:
            params["metadata_error"] = f"not valid JSON: {exc}"
        job, owner = self._start(params)
        store = self.core.job_store
        store.finish(job.id, owner, JobEvent.LEASE_EXPIRED, task=UPLOADING, task_percent=100.0)
        job = store.get(job.id)
        self.core.jobs.executor.dispatch(job.id, job.queue)
        return job

    def job(self, job_id: int) -> Job:
        try:
            job = self.core.jobs.get(job_id)
        except NotFound:
            raise NotFound(f"job {job_id} does not exist") from None
        if job.kind != KIND:
            raise NotFound(f"job {job_id} is not an ingest job")
        return job

    def state(self, job_id: int) -> dict[str, Any]:
        return pacifica_state(self.job(job_id))

    # -- transactions ------------------------------------------------------------
    def transaction(self, transaction_id: int) -> dict[str, Any]:
        return self.transactions.document(transaction_id)

    def transaction_page(self, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
        if not 1 <= limit <= 1000:
            raise InvalidRequest("limit must be between 1 and 1000")
        if offset < 0:
            raise InvalidRequest("offset must not be negative")
        return self.transactions.page(limit, offset)

    def archived_file(self, transaction_id: int, file_id: int) -> tuple[ArchivedFile, Any]:
        """The file's row and an open reader of its archived bytes."""
        row = self.transactions.file(transaction_id, file_id)
        fs, _ = self.open_archive()
        try:
            return row, fs.open_read(fs.full(row.archive_path))
        except FileNotFoundError:
            raise NotFound(f"file {file_id} is recorded but missing from the archive") from None
        finally:
            fs.close()

    # -- housekeeping ------------------------------------------------------------
    def sweep(self) -> int:
        """Remove spool folders of jobs that ended (or no longer exist); returns how many."""
        if not self.spool_root.is_dir():
            return 0
        removed = 0
        for entry in self.spool_root.iterdir():
            if not entry.name.isdigit():
                continue
            try:
                job = self.core.jobs.get(int(entry.name))
                gone = job.state.final
            except NotFound:
                gone = True
            if gone:
                shutil.rmtree(entry, ignore_errors=True)
                removed += 1
        return removed


def pacifica_state(job: Job) -> dict[str, Any]:
    """A job in the shape Pacifica's ``/get_state`` answers."""
    failed = job.state in (JobState.FAILED, JobState.CANCELLED)
    exception = ""
    if failed:
        exception = job.error or ("cancelled" if job.state is JobState.CANCELLED else "failed")
    return {
        "job_id": job.id,
        "state": "FAILED" if failed else "OK",
        "task": job.task,
        "task_percent": str(round(job.task_percent, 1)),
        "complete": failed or job.state is JobState.SUCCEEDED,
        "updated": job.updated.isoformat(),
        "created": job.created.isoformat(),
        "exception": exception,
    }
