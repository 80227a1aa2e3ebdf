"""Copy one file: stream it once through the hash into a temporary name in the
destination folder, sync, verify size (and, if asked, re-read the checksum),
then rename into place.

Byte-level resume: a large file's partial temporary survives an interruption
(a crash, a transient error, a cancel) where both sides allow it; the next
attempt checks that the partial file's tail still equals the source at the same
offset, re-hashes the partial file (read from the destination, not the source)
and continues from there instead of restarting the file."""

from __future__ import annotations

import hashlib
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dataferry.endpoints.filesystem import EndpointFS
from dataferry.endpoints.paths import name, parent
from dataferry.errors import JobLost, PermanentError, TransientError
from dataferry.transfers.plan import TMP_SUFFIX
from dataferry.transfers.request import Checksum

# Files at least this large are hashed on one thread while another writes.
PIPELINE_MIN_BYTES = 32 * 1024 * 1024
_PIPELINE_DEPTH = 4
# Before resuming, this many bytes at the end of the partial temporary must equal
# the source's bytes at the same offset, or the file restarts from zero.
RESUME_CHECK_BYTES = 64 * 1024


def temporary_name(dst_full: str, job_id: int) -> str:
    """Deterministic per job and file, so a resumed job finds and replaces it."""
    base = name(dst_full)[:200]  # leave room under the usual 255-byte name limit
    folder = parent(dst_full)
    return f"{folder}/.{base}.{job_id}{TMP_SUFFIX}" if folder else f".{base}.{job_id}{TMP_SUFFIX}"


def new_hasher(algo: Checksum) -> Any:
    return None if algo is Checksum.NONE else hashlib.new(algo.value)


def checksum_of(fs: EndpointFS, full: str, algo: Checksum, chunk: int) -> str:
    """``algo:hexdigest`` of a stored file ("" when checksums are off)."""
    hasher = new_hasher(algo)
    if hasher is None:
        return ""
    with fs.open_read(full) as f:
        while block := f.read(chunk):
            hasher.update(block)
    return f"{algo.value}:{hasher.hexdigest()}"


def write_all(fout: Any, data: memoryview | bytes) -> None:
    """Write every byte: a raw file's write() may take only part of a block."""
    view = memoryview(data)
    while view:
        n = fout.write(view)
        if n is None:  # a non-blocking raw stream; ours are blocking, but be exact
            raise OSError("write would block")
        view = view[n:]


Writeback = Callable[[Any, int, int], None]


def _stream(fin: Any, fout: Any, hasher: Any, chunk: int, on_bytes: Callable[[int], None]) -> int:
    written = 0
    while block := fin.read(chunk):
        if hasher is not None:
            hasher.update(block)
        write_all(fout, block)
        written += len(block)
        on_bytes(len(block))
    return written


def _stream_pipelined(
    fin: Any,
    fout: Any,
    hasher: Any,
    chunk: int,
    on_bytes: Callable[[int], None],
    *,
    writeback: Writeback,
    offset: int,
) -> int:
    """Read and hash here while a second thread writes, through a ring of reused
    buffers: hashing overlaps the write, and no memory is allocated per block.
    hashlib and file I/O release the GIL, so both cores work. The writer asks the
    destination to start writing each block to disk (``writeback``) so the final
    sync overlaps the copy instead of following it."""
    free: queue.Queue[bytearray] = queue.Queue()
    for _ in range(_PIPELINE_DEPTH):
        free.put(bytearray(chunk))
    full: queue.Queue[tuple[bytearray, int] | None] = queue.Queue()
    failure: list[BaseException] = []

    def writer() -> None:
        at = offset
        while (item := full.get()) is not None:
            buf, n = item
            if not failure:
                try:
                    write_all(fout, memoryview(buf)[:n])
                    writeback(fout, at, n)
                    at += n
                except BaseException as exc:
                    failure.append(exc)
            free.put(buf)

    thread = threading.Thread(target=writer, name="copy-writer", daemon=True)
    thread.start()
    written = 0
    readinto = getattr(fin, "readinto", None)
    try:
        while not failure:
            buf = free.get()
            if readinto is not None:
                n = readinto(buf)
            else:
                block = fin.read(chunk)
                n = len(block)
                buf[:n] = block
            if not n:
                break
            view = memoryview(buf)[:n]
            if hasher is not None:
                hasher.update(view)
            full.put((buf, n))
            written += n
            on_bytes(n)
    finally:
        full.put(None)
        thread.join()
    if failure:
        raise failure[0]
    return written


def _no_writeback(fobj: Any, offset: int, length: int) -> None:
    pass


def stream_file(
    fin: Any,
    fout: Any,
    hasher: Any,
    chunk: int,
    on_bytes: Callable[[int], None],
    *,
    size: int,
    writeback: Writeback = _no_writeback,
    offset: int = 0,
) -> int:
    """Copy ``fin`` to ``fout`` (written from ``offset``) through ``hasher``; a file of
    ``size`` bytes or more is pipelined and has its writeback started as it goes."""
    if size >= PIPELINE_MIN_BYTES:
        return _stream_pipelined(
            fin, fout, hasher, chunk, on_bytes, writeback=writeback, offset=offset
        )
    return _stream(fin, fout, hasher, chunk, on_bytes)


@dataclass(frozen=True, slots=True)
class Written:
    """A file streamed into its temporary name, not yet in place."""

    tmp: str
    final: str
    size: int
    checksum: str
    resumed_from: int = 0  # bytes kept from an earlier attempt's partial temporary


def discard(dst: EndpointFS, tmp: str) -> None:
    """Remove a temporary file if it is there; a failure here is left to the resume cleanup."""
    try:
        if dst.exists(tmp):
            dst.remove(tmp)
    except Exception:
        pass


def resume_point(
    src: EndpointFS, src_full: str, dst: EndpointFS, tmp: str, algo: Checksum, chunk: int, size: int
) -> tuple[int, Any]:
    """Where a partial temporary of a ``size``-byte source can be continued:
    ``(offset, hasher fed with those offset bytes)``, or ``(0, fresh hasher)``."""
    try:
        have = dst.size(tmp) if dst.exists(tmp) else 0
        if not 0 < have < size:
            return 0, new_hasher(algo)
        k = min(have, RESUME_CHECK_BYTES)
        if src.read_range(src_full, have - k, k) != dst.read_range(tmp, have - k, k):
            return 0, new_hasher(algo)
        hasher = new_hasher(algo)
        if hasher is not None:
            left = have
            with dst.open_read(tmp) as f:
                while left and (block := f.read(min(chunk, left))):
                    hasher.update(block)
                    left -= len(block)
            if left:
                return 0, new_hasher(algo)
        return have, hasher
    except Exception:  # a partial file we cannot read back: start the file again
        return 0, new_hasher(algo)


def keep_partial(exc: BaseException) -> bool:
    """Whether an interrupted temporary is worth keeping for a byte-level resume."""
    if isinstance(exc, (FileNotFoundError, PermissionError, PermanentError)):
        return False
    return isinstance(exc, (OSError, TransientError, JobLost, KeyboardInterrupt))


def write_temporary(
    src: EndpointFS,
    src_full: str,
    dst: EndpointFS,
    dst_full: str,
    *,
    job_id: int,
    algo: Checksum,
    chunk: int,
    on_bytes: Callable[[int], None],
    size_hint: int = 0,
    durable: bool = True,
    resume: bool = False,
    mtime: int | None = None,
) -> Written:
    """Stream ``src_full`` once through the hash into the temporary name next to
    ``dst_full``; with ``durable`` it is synced before this returns. ``mtime`` (ns),
    when known, is set on the temporary after its last byte and before the sync (the
    rename keeps it: the final name never shows the copy's time). On failure the
    temporary file is removed, unless ``resume`` (a large file on protocols that can
    continue it) and the failure may pass: then the next attempt continues it."""
    tmp = temporary_name(dst_full, job_id)
    resume = resume and src.resumable and dst.resumable
    offset, hasher = 0, new_hasher(algo)
    if resume:
        offset, hasher = resume_point(src, src_full, dst, tmp, algo, chunk, size_hint)
    writeback = dst.start_writeback if durable else _no_writeback
    try:
        fin = (
            src.open_read_at(src_full, offset)
            if offset
            else src.open_read(src_full, size_hint or None)
        )
        try:
            fout = dst.open_append(tmp) if offset else dst.open_write(tmp)
        except BaseException:
            fin.close()
            raise
        with fin, fout:
            written = stream_file(
                fin,
                fout,
                hasher,
                chunk,
                on_bytes,
                size=size_hint - offset,
                writeback=writeback,
                offset=offset,
            )
            if mtime is not None:
                dst.set_mtime(fout, tmp, mtime)
            if durable:
                dst.make_durable(fout)
    except BaseException as exc:
        if not (resume and keep_partial(exc)):
            discard(dst, tmp)
        raise
    checksum = f"{algo.value}:{hasher.hexdigest()}" if hasher is not None else ""
    return Written(tmp, dst_full, offset + written, checksum, offset)


def publish(dst: EndpointFS, item: Written, *, readback: bool, algo: Checksum, chunk: int) -> None:
    """Verify a durable temporary file (size, and the checksum again if asked) and
    rename it into place. On failure the temporary file is removed."""
    try:
        stored = dst.size(item.tmp)
        if stored != item.size:
            raise PermanentError(f"{item.final}: wrote {item.size} bytes but {stored} are stored")
        if readback and item.checksum:
            again = checksum_of(dst, item.tmp, algo, chunk)
            if again != item.checksum:
                raise PermanentError(
                    f"{item.final}: checksum after writing {again} != {item.checksum}"
                )
        dst.rename(item.tmp, item.final)
    except BaseException:
        discard(dst, item.tmp)
        raise


def copy_file(
    src: EndpointFS,
    src_full: str,
    dst: EndpointFS,
    dst_full: str,
    *,
    job_id: int,
    algo: Checksum,
    chunk: int,
    on_bytes: Callable[[int], None],
    size_hint: int = 0,
    readback: bool = False,
    make_parent: bool = True,
    mtime: int | None = None,
) -> str:
    """Copy, sync and verify one file; returns the checksum. Leaves no temporary file
    on failure."""
    folder = parent(dst_full)
    if make_parent and folder:
        dst.makedirs(folder)
    item = write_temporary(
        src,
        src_full,
        dst,
        dst_full,
        job_id=job_id,
        algo=algo,
        chunk=chunk,
        on_bytes=on_bytes,
        size_hint=size_hint,
        mtime=mtime,
    )
    publish(dst, item, readback=readback, algo=algo, chunk=chunk)
    return item.checksum
