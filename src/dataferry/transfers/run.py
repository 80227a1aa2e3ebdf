"""The ``transfer`` job handler: plan once, then copy unfinished files in parallel."""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from typing import Any

from dataferry.config import TransferSettings
from dataferry.endpoints.paths import join, split_location
from dataferry.endpoints.service import EndpointService
from dataferry.errors import DataferryError, JobLost, NotFound, PermanentError, TransientError
from dataferry.jobs.context import JobContext
from dataferry.transfers import plan as planning
from dataferry.transfers.copy import checksum_of, copy_file, temporary_name
from dataferry.transfers.request import Checksum, Mode, Overwrite, TransferRequest
from dataferry.transfers.store import FileOutcome, FileRow, FileState, TransferStore

log = logging.getLogger(__name__)

# Per-file outcomes are stored in batches: at most this often, or this many at once.
RECORD_SECONDS = 0.5
RECORD_BATCH = 500


def classify(exc: BaseException, what: str) -> DataferryError:
    """Turn a storage error into ours: transient (retry later) or permanent."""
    if isinstance(exc, DataferryError):
        return exc
    if isinstance(exc, FileNotFoundError):
        return PermanentError(f"{what}: not found (it vanished during the transfer)")
    if isinstance(exc, PermissionError):
        return PermanentError(f"{what}: permission denied")
    if isinstance(exc, (TimeoutError, ConnectionError)):
        return TransientError(f"{what}: {type(exc).__name__}: {exc}")
    if isinstance(exc, OSError):
        return TransientError(f"{what}: {exc.strerror or exc}")
    return PermanentError(f"{what}: {type(exc).__name__}: {exc}")


class _Progress:
    """Counts bytes and files across copy threads; pushes to the job context."""

    def __init__(
        self, ctx: JobContext, files_total: int, bytes_total: int, files_done: int, bytes_done: int
    ) -> None:
        self.ctx = ctx
        self.files_total = files_total
        self.bytes_total = bytes_total
        self.files_done = files_done
        self.bytes_done = bytes_done
        self.lock = threading.Lock()

    def add(self, nbytes: int = 0, nfiles: int = 0) -> None:
        with self.lock:
            self.bytes_done += nbytes
            self.files_done += nfiles
            fields = self.fields()
        self.ctx.progress(**fields)

    def fields(self) -> dict[str, Any]:
        if self.bytes_total:
            percent = 100.0 * self.bytes_done / self.bytes_total
        else:
            percent = 100.0 * self.files_done / self.files_total if self.files_total else 100.0
        return {
            "task": "copying",
            "task_percent": min(percent, 100.0),
            "bytes_done": self.bytes_done,
            "files_done": self.files_done,
        }


class TransferRun:
    def __init__(
        self,
        ctx: JobContext,
        endpoints: EndpointService,
        store: TransferStore,
        settings: TransferSettings,
    ) -> None:
        self.ctx = ctx
        self.store = store
        self.settings = settings
        self.req = TransferRequest.from_params(ctx.params)
        self.source_is_dir = bool(ctx.params.get("source_is_dir"))
        src_name, self.src_rel = split_location(self.req.source)
        dst_name, self.dst_rel = split_location(self.req.destination)
        try:
            self.src = endpoints.open(src_name)
            self.dst = endpoints.open(dst_name)
        except NotFound as exc:
            raise PermanentError(str(exc)) from exc
        self._outcomes: list[FileOutcome] = []
        self._outcome_lock = threading.Lock()
        self._last_record = time.monotonic()
        self._folders: set[str] = set()
        self._folder_lock = threading.Lock()

    def paths(self, row: FileRow) -> tuple[str, str]:
        return (
            self.src.full(join(self.src_rel, row.path)),
            self.dst.full(join(self.dst_rel, row.path)),
        )

    def run(self) -> dict[str, Any]:
        try:
            if self.ctx.job.files_total is None:
                self.ctx.progress(task="planning", task_percent=0.0, force=True)
                try:
                    files = planning.plan(self.src, self.src_rel)
                except Exception as exc:
                    raise classify(exc, f"planning {self.req.source}") from exc
                self.store.save_plan(self.ctx.job_id, self.ctx.owner, files)
                files_total, bytes_total = len(files), sum(f.size for f in files)
            else:
                files_total = self.ctx.job.files_total
                bytes_total = self.ctx.job.bytes_total or 0
            todo = self.store.unfinished(self.ctx.job_id)
            if self.ctx.job.attempts > 1:
                self._remove_stale_temporaries(todo)
            files_done, bytes_done = self.store.finished_totals(self.ctx.job_id)
            progress = _Progress(self.ctx, files_total, bytes_total, files_done, bytes_done)
            self.ctx.progress(**progress.fields(), force=True)
            counts = self._copy_all(todo, progress)
            if self.req.mode is Mode.MOVE and self.source_is_dir:
                self._remove_empty_source_dirs()
            self.ctx.progress(**{**progress.fields(), "task": "done", "task_percent": 100.0})
            return counts
        finally:
            self.src.close()
            self.dst.close()

    def _remove_stale_temporaries(self, todo: list[FileRow]) -> None:
        for row in todo:
            tmp = temporary_name(self.paths(row)[1], self.ctx.job_id)
            try:
                if self.dst.exists(tmp):
                    self.dst.remove(tmp)
            except OSError:
                log.warning("job %s: could not remove %s", self.ctx.job_id, tmp)

    def _copy_all(self, todo: list[FileRow], progress: _Progress) -> dict[str, Any]:
        counts = {"copied": 0, "skipped": 0}
        failure: list[BaseException] = []
        stop = threading.Event()

        def one(row: FileRow) -> None:
            if stop.is_set():
                return
            try:
                state, checksum = self._copy_one(row, progress)
            except JobLost:
                stop.set()
                raise
            except BaseException as exc:
                err = classify(exc, f"{row.path or self.req.source}")
                self._note(FileOutcome(row.id, FileState.FAILED, error=str(err)), force=True)
                stop.set()
                raise err from exc
            counts["copied" if state == FileState.DONE else "skipped"] += 1
            self._note(FileOutcome(row.id, state, checksum))
            progress.add(nfiles=1)

        with ThreadPoolExecutor(self.settings.concurrency, "copy") as pool:
            futures: list[Future[None]] = [pool.submit(one, row) for row in todo]
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            for f in done:
                if f.exception() is not None:
                    failure.append(f.exception())  # type: ignore[arg-type]
            stop.set() if failure else None
        self._flush_outcomes()
        if failure:
            lost = [e for e in failure if isinstance(e, JobLost)]
            raise lost[0] if lost else failure[0]
        return counts

    def _copy_one(self, row: FileRow, progress: _Progress) -> tuple[str, str]:
        self.ctx.check()
        src_full, dst_full = self.paths(row)
        algo = self.req.checksum
        if self.req.overwrite is not Overwrite.ALWAYS and self.dst.exists(dst_full):
            if self.req.overwrite is Overwrite.NEVER:
                progress.add(nbytes=row.size)
                return FileState.SKIPPED, ""
            if self.req.overwrite is Overwrite.IF_DIFFERENT:
                same, checksum = self._identical(src_full, dst_full, algo)
                if same:
                    progress.add(nbytes=row.size)
                    if self.req.mode is Mode.MOVE:
                        self.src.remove(src_full)
                    return FileState.SKIPPED, checksum
        self._ensure_folder(dst_full)
        copied = 0

        def on_bytes(n: int) -> None:
            nonlocal copied
            copied += n
            progress.add(nbytes=n)

        try:
            checksum = copy_file(
                self.src,
                src_full,
                self.dst,
                dst_full,
                job_id=self.ctx.job_id,
                algo=algo,
                chunk=self.settings.chunk_size,
                on_bytes=on_bytes,
                size_hint=row.size,
                readback=self.settings.verify_readback,
                make_parent=False,
            )
        except BaseException:
            progress.add(nbytes=-copied)
            raise
        if copied != row.size:
            # The file changed since planning; count what was really copied.
            progress.add(nbytes=row.size - copied)
        if self.req.mode is Mode.MOVE:
            self.src.remove(src_full)  # only after the copy is verified and in place
        return FileState.DONE, checksum

    def _ensure_folder(self, dst_full: str) -> None:
        """Create each destination folder once per run, not once per file."""
        folder = dst_full.rpartition("/")[0]
        with self._folder_lock:
            if folder and folder not in self._folders:
                self.dst.makedirs(folder)
                self._folders.add(folder)

    def _identical(self, src_full: str, dst_full: str, algo: Checksum) -> tuple[bool, str]:
        if self.src.size(src_full) != self.dst.size(dst_full):
            return False, ""
        if algo is Checksum.NONE:
            return True, ""
        chunk = self.settings.chunk_size
        mine = checksum_of(self.src, src_full, algo, chunk)
        return mine == checksum_of(self.dst, dst_full, algo, chunk), mine

    def _note(self, outcome: FileOutcome, force: bool = False) -> None:
        with self._outcome_lock:
            self._outcomes.append(outcome)
            due = (
                force
                or len(self._outcomes) >= RECORD_BATCH
                or time.monotonic() - self._last_record >= RECORD_SECONDS
            )
        if due:
            self._flush_outcomes()

    def _flush_outcomes(self) -> None:
        with self._outcome_lock:
            batch, self._outcomes = self._outcomes, []
            self._last_record = time.monotonic()
        self.store.record(batch)

    def _remove_empty_source_dirs(self) -> None:
        root = self.src.full(self.src_rel)
        dirs = [
            p
            for p, d in self.src.fs.find(root, withdirs=True, detail=True).items()
            if d["type"] == "directory"
        ]
        for d in sorted(dirs, key=len, reverse=True) + ([root] if self.src_rel else []):
            try:
                if not self.src.fs.ls(d):
                    self.src.fs.rmdir(d)
            except OSError:
                pass


def handler(endpoints: EndpointService, store: TransferStore, settings: TransferSettings) -> Any:
    def run(ctx: JobContext) -> dict[str, Any]:
        return TransferRun(ctx, endpoints, store, settings).run()

    return run
