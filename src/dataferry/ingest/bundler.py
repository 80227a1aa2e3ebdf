"""Client side: stream a bundle (tar of ``data/...`` then ``metadata.txt``) from a
folder, hashing each file as it is read, in constant memory.

The tar is produced block by block (``TarInfo.tobuf``), so it can be written to a
file or sent as an HTTP body while it is made; ``metadata.txt`` goes last, once
every hash is known, as the Pacifica uploader does.
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
import os
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dataferry.errors import InvalidRequest
from dataferry.ingest.metadata import HASH_LENGTHS, METADATA_NAME

BLOCK = tarfile.BLOCKSIZE
CHUNK = 1024 * 1024
HASHES = tuple(sorted(HASH_LENGTHS))


@dataclass(frozen=True, slots=True)
class Source:
    """A file to bundle: its path below ``data/`` and where to read it."""

    path: str
    local: Path
    size: int
    mtime: float


def sources_of(folder: Path) -> list[Source]:
    """Every regular file below ``folder`` (sorted; links are refused, not followed)."""
    if not folder.is_dir():
        raise InvalidRequest(f"{folder} is not a folder")
    out: list[Source] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        for name in sorted(filenames):
            p = Path(dirpath) / name
            st = p.lstat()
            if p.is_symlink():
                raise InvalidRequest(f"{p} is a symbolic link; bundles hold regular files only")
            rel = p.relative_to(folder).as_posix()
            out.append(Source(rel, p, st.st_size, st.st_mtime))
    return out


def transaction_entries(meta: dict[str, str]) -> list[dict[str, Any]]:
    """``{"Transactions.project": "p1", "Tag": "x"}`` -> metadata entries (keys other than
    ``Transactions.*`` become ``TransactionKeyValue`` entries)."""
    out: list[dict[str, Any]] = []
    for key, value in meta.items():
        if key.startswith("Transactions."):
            out.append({"destinationTable": key, "value": value})
        else:
            out.append({"destinationTable": "TransactionKeyValue", "key": key, "value": value})
    return out


def _header(name: str, size: int, mtime: float) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = int(mtime)
    info.mode = 0o644
    info.type = tarfile.REGTYPE
    return info.tobuf(format=tarfile.PAX_FORMAT, encoding="utf-8", errors="strict")


def _padding(size: int) -> bytes:
    return b"\0" * (-size % BLOCK)


def bundle_size(sources: list[Source]) -> int:
    """Bytes of data in a bundle (what progress bars count)."""
    return sum(s.size for s in sources)


def stream_bundle(
    sources: list[Source],
    entries: list[dict[str, Any]],
    *,
    hashtype: str = "sha1",
    chunk: int = CHUNK,
    on_bytes: Callable[[int], None] | None = None,
) -> Iterator[bytes]:
    """Yield the bundle's bytes: each file under ``data/``, then ``metadata.txt``."""
    if hashtype not in HASH_LENGTHS:
        raise InvalidRequest(f"hash {hashtype!r} is not one of {', '.join(HASHES)}")
    metadata = list(entries)
    for src in sources:
        yield _header(f"data/{src.path}", src.size, src.mtime)
        hasher = hashlib.new(hashtype)
        left = src.size
        with open(src.local, "rb") as f:
            while left > 0:
                block = f.read(min(chunk, left))
                if not block:
                    raise InvalidRequest(f"{src.local} shrank while it was being bundled")
                hasher.update(block)
                left -= len(block)
                if on_bytes is not None:
                    on_bytes(len(block))
                yield block
            if f.read(1):
                raise InvalidRequest(f"{src.local} grew while it was being bundled")
        yield _padding(src.size)
        stamp = datetime.fromtimestamp(src.mtime, UTC).isoformat()
        name = src.path.rsplit("/", 1)[-1]
        metadata.append(
            {
                "destinationTable": "Files",
                "name": name,
                "subdir": src.path[: -len(name)].rstrip("/"),
                "size": src.size,
                "hashtype": hashtype,
                "hashsum": hasher.hexdigest(),
                "mimetype": mimetypes.guess_type(name)[0] or "application/octet-stream",
                "ctime": stamp,
                "mtime": stamp,
            }
        )
    text = json.dumps(metadata, indent=1).encode()
    yield _header(METADATA_NAME, len(text), datetime.now(UTC).timestamp())
    yield text
    yield _padding(len(text))
    yield b"\0" * (2 * BLOCK)


def write_bundle(
    folder: Path,
    out: Path,
    meta: dict[str, str],
    *,
    hashtype: str = "sha1",
    on_bytes: Callable[[int], None] | None = None,
) -> int:
    """Bundle ``folder`` into the file ``out`` (via a temporary name); returns its size."""
    sources = sources_of(folder)
    tmp = out.with_name(f".{out.name}.part")
    written = 0
    try:
        with open(tmp, "wb") as f:
            for block in stream_bundle(
                sources, transaction_entries(meta), hashtype=hashtype, on_bytes=on_bytes
            ):
                f.write(block)
                written += len(block)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return written
