"""The ``ingest`` job handler: the named tasks in order, each from 0 to 100.

upload: UPLOADING (done by the front door) -> open tar -> load metadata ->
Policy Validation -> ingest files -> ingest metadata.
move:   UPLOADING -> load metadata -> Policy Validation -> move files -> ingest metadata.

Every check happens before a byte reaches the archive, except the hashes,
which are compared while the files stream into temporary names; a failure
removes the transaction's folder, so a refused bundle leaves nothing behind.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dataferry.errors import DataferryError, JobLost, TransientError
from dataferry.ingest import bundle as bundles
from dataferry.ingest import policy
from dataferry.ingest.archive import ArchiveWriter
from dataferry.ingest.metadata import BundleMetadata, FileEntry, check_metadata, parse_metadata
from dataferry.ingest.tasks import (
    INGEST_FILES,
    INGEST_METADATA,
    LOAD_METADATA,
    MOVE_FILES,
    OPEN_TAR,
    POLICY,
    UPLOADING,
    BundleError,
)
from dataferry.jobs.context import JobContext
from dataferry.transfers.run import classify

if TYPE_CHECKING:
    from dataferry.ingest.service import IngestService

log = logging.getLogger(__name__)

UPLOAD_NAME = "upload.tar"
PARTIAL_NAME = "upload.part"
EXPANDED_NAME = "expanded.tar"


class _Task:
    """Progress of one named task, pushed to the job (throttled by the context)."""

    def __init__(self, ctx: JobContext, name: str, total: int = 0) -> None:
        self.ctx = ctx
        self.name = name
        self.total = total
        self.done = 0
        ctx.progress(force=True, task=name, task_percent=0.0)

    def set(self, done: int, total: int | None = None, **extra: Any) -> None:
        if total is not None:
            self.total = total
        self.done = done
        percent = min(99.9, 100.0 * done / self.total) if self.total else 0.0
        self.ctx.progress(task=self.name, task_percent=percent, **extra)

    def finish(self, **extra: Any) -> None:
        self.ctx.progress(force=True, task=self.name, task_percent=100.0, **extra)


def handler(service: IngestService) -> Any:
    def run(ctx: JobContext) -> dict[str, Any]:
        spool = service.spool_of(ctx.job_id)
        try:
            if ctx.params.get("origin") == "move":
                result = _run_move(service, ctx)
            else:
                result = _run_upload(service, ctx, spool)
        except (JobLost, TransientError):
            raise  # keep the spool: the job runs again (or the sweep clears it)
        except BaseException:
            shutil.rmtree(spool, ignore_errors=True)
            raise
        shutil.rmtree(spool, ignore_errors=True)
        return result

    return run


def _run_upload(service: IngestService, ctx: JobContext, spool: Path) -> dict[str, Any]:
    settings = service.settings
    upload = spool / UPLOAD_NAME
    if service.transactions.exists(ctx.job_id):  # an earlier attempt got to the end
        return _finished(ctx)
    if not upload.is_file():
        raise BundleError(
            UPLOADING, "the upload did not complete (the server stopped while receiving it)"
        )

    # -- open tar --------------------------------------------------------------
    task = _Task(ctx, OPEN_TAR)
    tar_path = upload
    kind = bundles.compression_of(upload)
    if kind:
        tar_path = spool / EXPANDED_NAME
        bundles.expand(
            upload,
            tar_path,
            kind,
            max_bytes=settings.max_unpacked_bytes,
            max_ratio=settings.max_compression_ratio,
            chunk=settings.chunk_size,
            on_progress=lambda done, total: task.set(done // 2, total),
        )
    offset = 50 if kind else 0
    bundle = bundles.open_bundle(
        tar_path,
        max_members=settings.max_members,
        on_progress=lambda done, total: task.set(
            offset * total // 100 + done * (100 - offset) // 100, total
        ),
    )
    task.finish()

    # -- load metadata ---------------------------------------------------------
    task = _Task(ctx, LOAD_METADATA)
    bag_dir: Path | None = None
    if bundle.is_bag:
        from dataferry.ingest import bag

        bag_dir = spool / "bag"
        meta = bag.load(bundle, bag_dir, task.set)
    else:
        if bundle.metadata is None:
            raise BundleError(LOAD_METADATA, "metadata.txt is missing from the bundle")
        try:
            text = bundles.read_small_member(
                tar_path, bundle.metadata, bundles.METADATA_MAX_BYTES, "metadata.txt"
            )
        except BundleError as exc:
            raise BundleError(LOAD_METADATA, exc.message) from None
        meta = parse_metadata(text)
    task.finish(files_total=len(meta.files), bytes_total=meta.total_bytes)

    # -- Policy Validation -----------------------------------------------------
    task = _Task(ctx, POLICY)
    policy.validate(meta, settings)
    task.finish()

    # -- ingest files ----------------------------------------------------------
    task = _Task(ctx, INGEST_FILES, meta.total_bytes)
    if bag_dir is None:
        _check_listing(meta, bundle)

        def opener(entry: FileEntry) -> Any:
            return bundles.MemberReader(tar_path, bundle.files[entry.path])
    else:
        root = bag_dir

        def opener(entry: FileEntry) -> Any:
            return open(root / "data" / entry.path, "rb", buffering=0)

    paths = _archive(service, ctx, task, meta, opener)

    # -- ingest metadata -------------------------------------------------------
    return _record(service, ctx, meta, "bagit" if bag_dir else "upload", paths)


def _run_move(service: IngestService, ctx: JobContext) -> dict[str, Any]:
    if service.transactions.exists(ctx.job_id):
        return _finished(ctx)
    task = _Task(ctx, LOAD_METADATA)
    if "metadata_error" in ctx.params:
        raise BundleError(LOAD_METADATA, f"metadata: {ctx.params['metadata_error']}")
    meta = check_metadata(ctx.params.get("metadata"), need_source=True)
    task.finish(files_total=len(meta.files), bytes_total=meta.total_bytes)
    task = _Task(ctx, POLICY)
    policy.validate(meta, service.settings)
    task.finish()
    task = _Task(ctx, MOVE_FILES, meta.total_bytes)
    staging = service.open_staging()
    try:
        for entry in meta.files:
            full = staging.full(entry.source)
            staging.check_inside(entry.source)
            if not staging.exists(full) or staging.fs.isdir(full):
                raise BundleError(
                    MOVE_FILES, f"source {entry.source!r} is not a file on the staging endpoint"
                )
            size = staging.size(full)
            if size != entry.size:
                raise BundleError(
                    MOVE_FILES,
                    f"source {entry.source!r} is {size} bytes but the metadata declares "
                    f"{entry.size}",
                )

        def opener(entry: FileEntry) -> Any:
            return staging.open_read(staging.full(entry.source))

        paths = _archive(service, ctx, task, meta, opener)
    finally:
        staging.close()
    return _record(service, ctx, meta, "move", paths)


def _check_listing(meta: BundleMetadata, bundle: bundles.Bundle) -> None:
    """Every member under data/ listed, every listed file present, sizes equal."""
    listed = meta.by_path()
    for path in bundle.files:
        if path not in listed:
            raise BundleError(
                INGEST_FILES, f"data/{path} is in the bundle but not listed in metadata.txt"
            )
    for path, entry in listed.items():
        info = bundle.files.get(path)
        if info is None:
            raise BundleError(
                INGEST_FILES, f"data/{path} is listed in metadata.txt but not in the bundle"
            )
        if info.size != entry.size:
            bigger = "larger" if info.size > entry.size else "smaller"
            raise BundleError(
                INGEST_FILES,
                f"data/{path} is {info.size} bytes in the bundle, {bigger} than the "
                f"{entry.size} bytes metadata.txt declares",
            )


def _archive(
    service: IngestService,
    ctx: JobContext,
    task: _Task,
    meta: BundleMetadata,
    opener: Any,
) -> dict[str, str]:
    """Write every file of ``meta`` into the archive; all or nothing."""
    fs, endpoint_name = service.open_archive()
    folder = str(ctx.job_id)
    done = {"bytes": 0, "files": 0}

    def on_bytes(n: int) -> None:
        done["bytes"] += n
        task.set(done["bytes"], bytes_done=done["bytes"], files_done=done["files"])

    writer = ArchiveWriter(
        fs,
        folder,
        job_id=ctx.job_id,
        chunk=service.settings.chunk_size,
        task=task.name,
        on_bytes=on_bytes,
    )
    try:
        writer.clear()  # whatever an interrupted attempt left
        for entry in meta.files:
            with opener(entry) as fin:
                writer.write(entry.path, fin, entry.size, entry.hashtype, entry.hashsum)
            done["files"] += 1
            ctx.progress(files_done=done["files"])
        writer.publish()
    except BaseException as exc:
        writer.abort()
        fs.close()
        if isinstance(exc, (DataferryError, KeyboardInterrupt, SystemExit)):
            raise
        raise classify(exc, f"archiving into {endpoint_name}") from exc
    fs.close()
    task.finish(bytes_done=meta.total_bytes, files_done=len(meta.files))
    return {e.path: writer.rel(e.path) for e in meta.files}


def _record(
    service: IngestService,
    ctx: JobContext,
    meta: BundleMetadata,
    origin: str,
    paths: dict[str, str],
) -> dict[str, Any]:
    task = _Task(ctx, INGEST_METADATA)
    folder = str(ctx.job_id)
    try:
        service.transactions.record(
            ctx.job_id,
            ctx.job_id,
            meta,
            origin=origin,
            archive_endpoint=service.archive_name,
            archive_folder=folder,
            archive_paths=paths,
        )
    except BaseException:
        fs, _ = service.open_archive()
        try:
            ArchiveWriter(
                fs, folder, job_id=ctx.job_id, chunk=1, task=INGEST_METADATA, on_bytes=_ignore
            ).abort()
        finally:
            fs.close()
        raise
    task.finish()
    return {"transaction_id": ctx.job_id, "finished": time.time()}


def _finished(ctx: JobContext) -> dict[str, Any]:
    ctx.progress(force=True, task=INGEST_METADATA, task_percent=100.0)
    return {"transaction_id": ctx.job_id}


def _ignore(n: int) -> None:
    pass
