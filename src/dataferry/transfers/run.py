"""The ``transfer`` job handler: plan once, then copy unfinished files in parallel."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from typing import Any

from dataferry.config import TransferSettings
from dataferry.endpoints.filesystem import EndpointFS
from dataferry.endpoints.paths import join, split_location
from dataferry.endpoints.service import EndpointService
from dataferry.errors import (
    DataferryError,
    JobLost,
    NotFound,
    PermanentError,
    TransientError,
    refused_by_the_file_system,
)
from dataferry.jobs.context import JobContext
from dataferry.transfers import mirror
from dataferry.transfers import plan as planning
from dataferry.transfers.copy import (
    Written,
    checksum_of,
    discard,
    publish,
    temporary_name,
    write_temporary,
)
from dataferry.transfers.limits import reference_time
from dataferry.transfers.request import Checksum, Compare, Mode, Overwrite, TransferRequest
from dataferry.transfers.store import (
    UNKNOWN_MTIME,
    FileOutcome,
    FileRow,
    FileState,
    TransferStore,
)
from dataferry.transfers.throttle import Throttle

log = logging.getLogger(__name__)

# Files below this size are synced in groups (one sync for many files) where the
# destination can; a group is flushed at whichever limit comes first.
GROUP_FILE_MAX_BYTES = 1024 * 1024
GROUP_MAX_FILES = 256
GROUP_MAX_BYTES = 64 * 1024 * 1024
GROUP_MAX_SECONDS = 0.25
# Destinations that put a whole group in place in one request (``batch_put``, the peer
# protocol) get smaller groups, several in flight, so that sending overlaps reading.
BATCH_MAX_BYTES = 16 * 1024 * 1024
BATCH_IN_FLIGHT = 2

# Per-file outcomes are stored in batches: at most this often, or this many at once.
RECORD_SECONDS = 0.5
RECORD_BATCH = 500


def classify(exc: BaseException, what: str, *endpoints: EndpointFS) -> DataferryError:
    """Turn a storage error into ours: transient (retry later) or permanent. The
    endpoints' protocols have the first word (``EndpointFS.classify``)."""
    if isinstance(exc, DataferryError):
        return exc
    for fs in endpoints:
        mine = fs.classify(exc, what)
        if mine is not None:
            return mine
    if isinstance(exc, FileNotFoundError):
        return PermanentError(f"{what}: not found (it vanished during the transfer)")
    if isinstance(exc, PermissionError):
        return PermanentError(f"{what}: permission denied")
    if refused_by_the_file_system(exc):
        return PermanentError(f"{what}: {exc.strerror or exc}")
    if isinstance(exc, (TimeoutError, ConnectionError)):
        return TransientError(f"{what}: {type(exc).__name__}: {exc}")
    if isinstance(exc, OSError):
        return TransientError(f"{what}: {exc.strerror or exc}")
    return PermanentError(f"{what}: {type(exc).__name__}: {exc}")


# Paths a check's result lists of the files only the destination has (it counts all).
EXTRA_PATHS_KEPT = 1000


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
        self.task = "copying"
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
            "task": self.task,
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
        self.throttle = Throttle(settings.bandwidth_limit)
        self.now_ns = 0  # what age limits are measured from (set by run when it has any)

    def paths(self, row: FileRow) -> tuple[str, str]:
        return (
            self.src.full(join(self.src_rel, row.path)),
            self.dst.full(join(self.dst_rel, row.path)),
        )

    def run(self) -> dict[str, Any]:
        try:
            if self.req.limits.ages:
                # Pinned at the first planning and kept: a re-plan, and the mirror's and
                # the check's listings of the destination, measure from the same moment.
                now = time.time_ns()
                self.now_ns = self.store.pin_reference(self.ctx.job_id, self.ctx.owner, now)
            if self.ctx.job.files_total is None:
                self.ctx.progress(task="planning", task_percent=0.0, force=True)
                try:
                    listed = planning.plan(self.src, self.src_rel, self.req.filter)
                except Exception as exc:
                    raise classify(exc, f"planning {self.req.source}", self.src) from exc
                files, unknown = planning.choose(listed, self.req.limits, self.now_ns)
                self.store.save_plan(self.ctx.job_id, self.ctx.owner, files, unknown)
                files_total, bytes_total = len(files), sum(f.size for f in files)
            else:
                files_total = self.ctx.job.files_total
                bytes_total = self.ctx.job.bytes_total or 0
                unknown = int(self.ctx.params.get(UNKNOWN_MTIME, 0))
            todo = self.store.unfinished(self.ctx.job_id)
            if self.ctx.job.attempts > 1 and self.req.mode is not Mode.CHECK:
                self._remove_stale_temporaries(todo)  # a check writes none
            files_done, bytes_done = self.store.finished_totals(self.ctx.job_id)
            progress = _Progress(self.ctx, files_total, bytes_total, files_done, bytes_done)
            if self.req.mode is Mode.CHECK:
                progress.task = "checking"
                self.ctx.progress(**progress.fields(), force=True)
                return self._check_all(todo, progress, self._chosen(unknown))
            self.ctx.progress(**progress.fields(), force=True)
            counts = self._copy_all(todo, progress)
            counts.update(self._chosen(unknown))
            kept: list[str] = []
            if self.req.empty_folders and self.source_is_dir:
                # After the files (as rclone does), so a resumed job creates them too;
                # before a move empties the source of them.
                kept = self._create_empty_folders()
                counts["folders"] = len(kept) if self.dst.keeps_folders else 0
            if self.req.mode is Mode.MOVE and self.source_is_dir:
                self._remove_empty_source_dirs()
            if self.req.mode is Mode.MIRROR:
                counts["deleted"] = self._delete_extraneous(kept)
            self.ctx.progress(**{**progress.fields(), "task": "done", "task_percent": 100.0})
            return counts
        finally:
            self.src.close()
            self.dst.close()

    def _source_has_if(self) -> Callable[[str], bool] | None:
        """With limits, whether the source has the file ``rel`` (one the limits left
        out: the plan does not keep those, and a resumed run has only the plan)."""
        if not self.req.limits:
            return None
        return lambda rel: bool(self.src.fs.isfile(self.src.full(join(self.src_rel, rel))))

    def _chosen(self, unknown_mtime: int) -> dict[str, Any]:
        """For the result: the moment age limits were measured from, and how many files
        they left out for want of a time (only when there were any)."""
        out: dict[str, Any] = {}
        if self.req.limits.ages:
            out["reference_time"] = reference_time(self.now_ns)
        if unknown_mtime:
            out[UNKNOWN_MTIME] = unknown_mtime
        return out

    def _resumable(self, row: FileRow) -> bool:
        return (
            row.size >= self.settings.resume_min_bytes and self.src.resumable and self.dst.resumable
        )

    def _remove_stale_temporaries(self, todo: list[FileRow]) -> None:
        for row in todo:
            if self._resumable(row):
                continue  # its partial temporary is where the copy resumes
            tmp = temporary_name(self.paths(row)[1], self.ctx.job_id)
            try:
                if self.dst.exists(tmp):
                    self.dst.remove(tmp)
            except OSError:
                log.warning("job %s: could not remove %s", self.ctx.job_id, tmp)

    def _copy_all(self, todo: list[FileRow], progress: _Progress) -> dict[str, Any]:
        counts = {"copied": 0, "skipped": 0, "bytes_read": 0, "bytes_resumed": 0}
        group = _Group(self, progress, counts) if self.dst.group_sync else None

        def finished(row: FileRow, state: str, checksum: str) -> None:
            with self._outcome_lock:
                counts["copied" if state == FileState.DONE else "skipped"] += 1
            self._note(FileOutcome(row.id, state, checksum))
            progress.add(nfiles=1)

        def one(row: FileRow) -> None:
            outcome = self._copy_one(row, progress, group, counts)
            if outcome is not None:
                finished(row, *outcome)
            if group is not None:
                group.flush_if_due()

        failure = self._each(todo, "copy", one)
        if group is not None:
            if failure is None:
                try:
                    group.flush()
                except BaseException as exc:
                    failure = exc
            group.discard()
        self._flush_outcomes()
        if failure is not None:
            raise failure
        return counts

    def _check_all(
        self, todo: list[FileRow], progress: _Progress, chosen: dict[str, Any]
    ) -> dict[str, Any]:
        """Mode check: compare each planned file with the destination's (as sync
        decides what differs) and list what only the destination has; write nothing.
        Succeeds only when both sides hold the same files; otherwise fails (no retry)
        with the counts, the per-file states saying which."""

        def one(row: FileRow) -> None:
            self.ctx.check()
            src_full, dst_full = self.paths(row)
            checksum = ""
            theirs = self.dst.info_or_none(dst_full)
            if theirs is None:
                state = FileState.MISSING
            else:
                algo = self.req.checksum
                same, checksum = self._identical(row, src_full, dst_full, algo, theirs)
                state = FileState.SAME if same else FileState.DIFFERS
            self._note(FileOutcome(row.id, state, checksum))
            progress.add(nbytes=row.size, nfiles=1)

        failure = self._each(todo, "check", one)
        self._flush_outcomes()
        if failure is not None:
            raise failure
        extra: list[str] = []
        if self.source_is_dir:
            planned = self.store.planned_paths(self.ctx.job_id)
            root = self.dst.full(self.dst_rel)
            try:
                extra = self._extraneous(root, planned)
            except DataferryError:
                raise
            except Exception as exc:
                raise classify(exc, f"listing {self.req.destination}", self.dst) from exc
        states = self.store.state_counts(self.ctx.job_id)
        result: dict[str, Any] = {
            "same": states.get(FileState.SAME, 0),
            "differ": states.get(FileState.DIFFERS, 0),
            "missing": states.get(FileState.MISSING, 0),
            "extra": len(extra),
            "extra_paths": extra[:EXTRA_PATHS_KEPT],
            **chosen,
        }
        self.ctx.progress(**{**progress.fields(), "task": "done", "task_percent": 100.0})
        if result["differ"] or result["missing"] or result["extra"]:
            self.ctx.progress(result=result)  # stored with the failure
            raise PermanentError(
                f"check: the sides differ (files: {result['differ']} differ, "
                f"{result['missing']} missing at the destination, {result['extra']} only at "
                f"the destination, {result['same']} the same); the job's files say which"
            )
        return result

    def _each(
        self, todo: list[FileRow], name: str, work: Callable[[FileRow], None]
    ) -> BaseException | None:
        """``work(row)`` for each row on the job's threads; at the first failure (the
        file's error recorded) the rows not yet begun are left. Returns that failure,
        a lost job before any other."""
        stop = threading.Event()

        def one(row: FileRow) -> None:
            if stop.is_set():
                return
            try:
                work(row)
            except JobLost:
                stop.set()
                raise
            except BaseException as exc:
                stop.set()
                raise self._failed(row, exc) from exc

        with ThreadPoolExecutor(self.settings.concurrency, name) as pool:
            futures: list[Future[None]] = [pool.submit(one, row) for row in todo]
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            errors = [e for f in done if (e := f.exception()) is not None]
            if errors:
                stop.set()
                return next((e for e in errors if isinstance(e, JobLost)), errors[0])
        return None

    def _failed(self, row: FileRow, exc: BaseException) -> DataferryError:
        err = classify(exc, f"{row.path or self.req.source}", self.src, self.dst)
        self._note(FileOutcome(row.id, FileState.FAILED, error=str(err)), force=True)
        return err

    def _copy_one(
        self, row: FileRow, progress: _Progress, group: _Group | None, counts: dict[str, int]
    ) -> tuple[str, str] | None:
        """Copy one file; returns (state, checksum), or None when the file waits in
        ``group`` for a shared sync before it is put in place."""
        self.ctx.check()
        src_full, dst_full = self.paths(row)
        algo = self.req.checksum
        theirs = None
        if self.req.overwrite is not Overwrite.ALWAYS:
            theirs = self.dst.info_or_none(dst_full)
        if theirs is not None:
            if self.req.overwrite is Overwrite.NEVER:
                progress.add(nbytes=row.size)
                return FileState.SKIPPED, ""
            if self.req.overwrite is Overwrite.IF_DIFFERENT:
                same, checksum = self._identical(row, src_full, dst_full, algo, theirs)
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
            self.throttle.take(n)

        deferred = group is not None and row.size < GROUP_FILE_MAX_BYTES
        try:
            item = write_temporary(
                self.src,
                src_full,
                self.dst,
                dst_full,
                job_id=self.ctx.job_id,
                algo=algo,
                chunk=self.settings.chunk_size,
                on_bytes=on_bytes,
                size_hint=row.size,
                durable=not deferred,
                resume=self._resumable(row),
                mtime=row.mtime,
            )
        except BaseException:
            progress.add(nbytes=-copied)
            with self._outcome_lock:
                counts["bytes_read"] += copied
            raise
        with self._outcome_lock:
            counts["bytes_read"] += copied
            counts["bytes_resumed"] += item.resumed_from
        if copied != row.size:
            # Resumed from a partial file, or the file changed since planning:
            # count what is really there.
            progress.add(nbytes=row.size - copied)
        expected = self.req.expected_checksum
        if expected and item.checksum != expected:
            discard(self.dst, item.tmp)
            raise PermanentError(
                f"{self.req.source}: checksum {item.checksum} differs from the expected {expected}"
            )
        if deferred:
            assert group is not None
            group.add(row, src_full, item)
            return None
        self._put_in_place(src_full, item)
        return FileState.DONE, item.checksum

    def _put_in_place(self, src_full: str, item: Written) -> None:
        publish(
            self.dst,
            item,
            readback=self.settings.verify_readback,
            algo=self.req.checksum,
            chunk=self.settings.chunk_size,
        )
        if self.req.mode is Mode.MOVE:
            self.src.remove(src_full)  # only after the copy is verified and in place

    def _ensure_folder(self, dst_full: str) -> None:
        """Create each destination folder once per run, not once per file."""
        if self.dst.creates_parents:
            return
        folder = dst_full.rpartition("/")[0]
        with self._folder_lock:
            if folder and folder not in self._folders:
                self.dst.makedirs(folder)
                self._folders.add(folder)

    def _identical(
        self, row: FileRow, src_full: str, dst_full: str, algo: Checksum, info: dict[str, Any]
    ) -> tuple[bool, str]:
        """Whether the destination's file (``info``: its fsspec info) is the source's."""
        if info.get("type") == "directory":
            return False, ""  # copying onto it fails and says so
        size = int(info.get("size") or 0)
        quick = self.req.compare is Compare.SIZE_MTIME and self.dst.keeps_mtime
        if quick and row.mtime is not None:
            theirs = self.dst.mtime_of(dst_full, info)
            if theirs is not None:  # else (an older peer): by checksum below
                # to the second: SFTP keeps whole seconds
                same_time = theirs // 10**9 == row.mtime // 10**9
                return same_time and size == row.size, ""
        if self.src.size(src_full) != size:
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

    def _create_empty_folders(self) -> list[str]:
        """Create the source's empty folders (and the destination folder itself, which
        a source without files would not get) where the destination has folders;
        returns them (a mirror keeps them)."""
        what = f"listing the empty folders of {self.req.source}"
        try:
            folders = planning.empty_folders(self.src, self.src_rel, self.req.filter)
            if self.dst.keeps_folders:
                for folder in ["", *folders]:
                    target = join(self.dst_rel, folder) if folder else self.dst_rel
                    what = f"creating the empty folder {target or '/'!r} on {self.dst.name!r}"
                    self.dst.makedirs(self.dst.full(target))
        except DataferryError:
            raise
        except Exception as exc:
            raise classify(exc, what, self.src, self.dst) from exc
        return folders

    def _extraneous(self, root: str, planned: set[str]) -> list[str]:
        """What only the destination folder ``root`` has (mirror removes it, check
        reports it), judged by the transfer's patterns and limits."""
        limits, source_has = self.req.limits, self._source_has_if()
        return mirror.extraneous(
            self.dst, root, planned, self.req.filter, limits, self.now_ns, source_has
        )

    def _delete_extraneous(self, kept_folders: list[str]) -> int:
        root = self.dst.full(self.dst_rel)
        planned = self.store.planned_paths(self.ctx.job_id)
        try:
            doomed = self._extraneous(root, planned)
            self.ctx.progress(task="deleting", task_percent=0.0, force=True)

            def checkpoint(n: int) -> None:
                self.ctx.progress(task="deleting", task_percent=100.0 * n / len(doomed))

            mirror.remove(self.dst, root, doomed, planned, checkpoint, kept_folders)
        except DataferryError:
            raise
        except Exception as exc:
            raise classify(exc, f"mirroring into {self.req.destination}", self.dst) from exc
        if doomed:
            log.info("job %s: removed %d files not in the source", self.ctx.job_id, len(doomed))
        return len(doomed)

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
                    self.src.remove_dir(d)
            except OSError:
                pass


class _Group:
    """Small files written to temporaries, waiting for one shared sync (on backends
    where that is cheaper than a sync per file), then verified and put in place."""

    def __init__(self, run: TransferRun, progress: _Progress, counts: dict[str, int]) -> None:
        self.run = run
        self.progress = progress
        self.counts = counts
        self.lock = threading.Lock()
        batches = run.dst.batch_put
        self.max_bytes = BATCH_MAX_BYTES if batches else GROUP_MAX_BYTES
        self.slots = threading.BoundedSemaphore(BATCH_IN_FLIGHT if batches else 1)
        self.items: list[tuple[FileRow, str, Written]] = []
        self.bytes = 0
        self.since = 0.0

    def add(self, row: FileRow, src_full: str, item: Written) -> None:
        with self.lock:
            if not self.items:
                self.since = time.monotonic()
            self.items.append((row, src_full, item))
            self.bytes += item.size

    def flush_if_due(self) -> None:
        with self.lock:
            due = (
                len(self.items) >= GROUP_MAX_FILES
                or self.bytes >= self.max_bytes
                or (self.items and time.monotonic() - self.since >= GROUP_MAX_SECONDS)
            )
            over = len(self.items) >= 2 * GROUP_MAX_FILES or self.bytes >= 2 * self.max_bytes
        if not due:
            return
        # A destination that takes whole batches gets up to BATCH_IN_FLIGHT of them at
        # once (others one group at a time); meanwhile the other copy threads keep
        # filling the next group, and only wait when it has grown to twice its limit.
        if not self.slots.acquire(blocking=over):
            return
        try:
            self._flush()
        finally:
            self.slots.release()

    def flush(self) -> None:
        with self.slots:
            self._flush()

    def _flush(self) -> None:
        with self.lock:
            batch, self.items, self.bytes = self.items, [], 0
        if not batch:
            return
        dst = self.run.dst
        if dst.batch_put and not self.run.settings.verify_readback:
            self._put_batch(batch)
            return
        try:
            dst.make_durable_many([item.tmp for _, _, item in batch])
        except BaseException:
            self._put_back(batch)
            raise
        for i, (row, src_full, item) in enumerate(batch):
            try:
                self.run._put_in_place(src_full, item)
            except BaseException as exc:
                self._put_back(batch[i + 1 :])
                raise self.run._failed(row, exc) from exc
            with self.run._outcome_lock:
                self.counts["copied"] += 1
            self.run._note(FileOutcome(row.id, FileState.DONE, item.checksum))
            self.progress.add(nfiles=1)

    def _put_batch(self, batch: list[tuple[FileRow, str, Written]]) -> None:
        """The whole group synced, checked and renamed by the destination in one call;
        outcomes are recorded only once it answered."""
        run = self.run
        try:
            run.dst.put_in_place_many([(item.tmp, item.final, item.size) for _, _, item in batch])
        except BaseException as exc:
            self._put_back(batch)
            raise classify(exc, f"putting {len(batch)} files in place", run.dst) from exc
        for row, src_full, item in batch:
            if run.req.mode is Mode.MOVE:
                run.src.remove(src_full)  # only after the copy is verified and in place
            with run._outcome_lock:
                self.counts["copied"] += 1
            run._note(FileOutcome(row.id, FileState.DONE, item.checksum))
            self.progress.add(nfiles=1)

    def _put_back(self, batch: list[tuple[FileRow, str, Written]]) -> None:
        with self.lock:
            self.items[:0] = batch

    def discard(self) -> None:
        """Remove the temporaries of files that were never put in place (on failure)."""
        with self.lock:
            batch, self.items = self.items, []
        for _, _, item in batch:
            discard(self.run.dst, item.tmp)


def handler(endpoints: EndpointService, store: TransferStore, settings: TransferSettings) -> Any:
    def run(ctx: JobContext) -> dict[str, Any]:
        return TransferRun(ctx, endpoints, store, settings).run()

    return run
