"""Copy one file: stream once through the hash into a temporary name in the
destination folder, sync, verify size and checksum, then rename into place."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from dataferry.endpoints.filesystem import EndpointFS
from dataferry.endpoints.paths import name, parent
from dataferry.errors import PermanentError
from dataferry.transfers.plan import TMP_SUFFIX
from dataferry.transfers.request import Checksum


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
    with fs.fs.open(full, "rb") as f:
        while block := f.read(chunk):
            hasher.update(block)
    return f"{algo.value}:{hasher.hexdigest()}"


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
) -> str:
    """Copy and verify; returns the checksum. Leaves no temporary file on failure."""
    tmp = temporary_name(dst_full, job_id)
    folder = parent(dst_full)
    if folder:
        dst.fs.makedirs(folder, exist_ok=True)
    hasher = new_hasher(algo)
    written = 0
    try:
        with src.fs.open(src_full, "rb") as fin, dst.fs.open(tmp, "wb") as fout:
            while block := fin.read(chunk):
                if hasher is not None:
                    hasher.update(block)
                fout.write(block)
                written += len(block)
                on_bytes(len(block))
        dst.fsync(tmp)
        stored = int(dst.fs.size(tmp))
        if stored != written:
            raise PermanentError(f"{dst_full}: wrote {written} bytes but {stored} are stored")
        checksum = f"{algo.value}:{hasher.hexdigest()}" if hasher is not None else ""
        if checksum:
            again = checksum_of(dst, tmp, algo, chunk)
            if again != checksum:
                raise PermanentError(f"{dst_full}: checksum after writing {again} != {checksum}")
        dst.fs.mv(tmp, dst_full)
        return checksum
    except BaseException:
        try:
            if dst.fs.exists(tmp):
                dst.fs.rm(tmp)
        except Exception:
            pass  # the cleanup on resume removes it
        raise
