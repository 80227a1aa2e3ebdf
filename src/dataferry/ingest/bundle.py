"""Reading a spooled bundle safely: compressed or plain tar, member by member.

``open_bundle`` is the ``open tar`` task: it expands a compressed bundle (with a
size and ratio limit against decompression bombs), then walks every member
header once, refusing anything that could write outside the archive folder or
is not plain data: absolute paths, ``..``, links, devices, duplicates, a
truncated archive. Member data is never held in memory: ``member_reader``
gives a bounded reader over the spooled tar.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import tarfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from dataferry.endpoints.paths import clean_relative
from dataferry.errors import InvalidRequest
from dataferry.ingest.metadata import DATA_DIR, METADATA_NAME
from dataferry.ingest.tasks import OPEN_TAR, BundleError
from dataferry.text import undecodable

BLOCK = tarfile.BLOCKSIZE
# Expanding less than this never counts as a bomb, whatever the ratio.
RATIO_GRACE_BYTES = 1024 * 1024
METADATA_MAX_BYTES = 64 * 1024 * 1024

_MAGIC: list[tuple[bytes, str]] = [
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
]


def _fail(message: str) -> BundleError:
    return BundleError(OPEN_TAR, message)


def compression_of(path: Path) -> str:
    """``gzip``, ``bzip2``, ``xz`` or ``""`` (plain), from the first bytes."""
    with open(path, "rb") as f:
        head = f.read(8)
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    return ""


def _decompressor(kind: str, raw: BinaryIO) -> Any:
    if kind == "gzip":
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if kind == "bzip2":
        return bz2.BZ2File(raw, mode="rb")
    return lzma.LZMAFile(raw, mode="rb")


def expand(
    src: Path,
    dst: Path,
    kind: str,
    *,
    max_bytes: int,
    max_ratio: float,
    chunk: int,
    on_progress: Callable[[int, int], None],
) -> int:
    """Decompress ``src`` into ``dst``; refuse a bomb. Returns the expanded size."""
    packed = src.stat().st_size
    written = 0
    try:
        with open(src, "rb") as raw, open(dst, "wb") as out:
            stream = _decompressor(kind, raw)
            while True:
                try:
                    block = stream.read(chunk)
                except (OSError, EOFError, zlib.error, lzma.LZMAError) as exc:
                    raise _fail(f"the {kind} stream is damaged or cut short: {exc}") from None
                if not block:
                    break
                written += len(block)
                if written > max_bytes:
                    raise _fail(
                        f"the {kind} bundle expands to more than {max_bytes} bytes "
                        "(the configured ingest.max_unpacked_bytes)"
                    )
                consumed = max(raw.tell(), 1)
                if written > RATIO_GRACE_BYTES and written / consumed > max_ratio:
                    raise _fail(
                        f"the {kind} bundle expands more than {max_ratio:g} times "
                        "(ingest.max_compression_ratio): refused as a decompression bomb"
                    )
                out.write(block)
                on_progress(raw.tell(), packed)
    except BaseException:
        dst.unlink(missing_ok=True)
        raise
    return written


@dataclass
class Bundle:
    """A spooled plain tar whose member headers were all checked."""

    tar_path: Path
    size: int
    files: dict[str, tarfile.TarInfo] = field(default_factory=dict)  # path below data/
    metadata: tarfile.TarInfo | None = None
    bag_root: str | None = None  # set when the tar holds a BagIt bag
    bag_members: dict[str, tarfile.TarInfo] = field(default_factory=dict)  # path in the bag
    folders: set[str] = field(default_factory=set)

    @property
    def is_bag(self) -> bool:
        return self.bag_root is not None


def _member_path(info: tarfile.TarInfo) -> str:
    raw = info.name
    if undecodable(raw):  # tarfile hands bytes that are not UTF-8 over as surrogates
        raise _fail(f"member {raw!r}: the name is not valid UTF-8")
    if raw.startswith("/"):
        raise _fail(f"member {raw!r} has an absolute path")
    try:
        path = clean_relative(raw)
    except InvalidRequest as exc:
        raise _fail(f"member {raw!r}: {exc.message}") from None
    if not path:
        if info.isdir():
            return ""
        raise _fail(f"member {raw!r} has no name")
    return path


def _kind_problem(info: tarfile.TarInfo) -> str:
    if info.issym():
        return f"is a symbolic link (to {info.linkname!r})"
    if info.islnk():
        return f"is a hard link (to {info.linkname!r})"
    if info.ischr() or info.isblk():
        return "is a device file"
    if info.isfifo():
        return "is a FIFO"
    if info.issparse():
        return "is a sparse file"
    return "is not a regular file or folder"


def _bag_root(names: list[str]) -> str | None:
    if "bagit.txt" in names:
        return ""
    tops = {n.split("/", 1)[0] for n in names}
    if len(tops) == 1:
        top = next(iter(tops))
        if f"{top}/bagit.txt" in names:
            return top
    return None


def open_bundle(
    tar_path: Path,
    *,
    max_members: int,
    on_progress: Callable[[int, int], None],
) -> Bundle:
    """Check every member header of a plain tar (the ``open tar`` task)."""
    size = tar_path.stat().st_size
    if size == 0:
        raise _fail("the bundle is empty (0 bytes)")
    seen: dict[str, tarfile.TarInfo] = {}
    folders: set[str] = set()
    end = 0
    try:
        with tarfile.open(tar_path, mode="r:") as tar:
            for count, info in enumerate(tar, start=1):
                if count > max_members:
                    raise _fail(f"the bundle holds more than {max_members} members")
                path = _member_path(info)
                if info.isdir():
                    if path in seen:
                        raise _fail(f"member {info.name!r} is both a file and a folder")
                    folders.add(path)
                    continue
                if not info.isreg():
                    raise _fail(f"member {info.name!r} {_kind_problem(info)}: refused")
                if path in seen or path in folders:
                    raise _fail(f"member {path!r} appears twice in the bundle")
                end = info.offset_data + info.size
                if end > size:
                    raise _fail(
                        f"the tar is truncated: member {path!r} needs {info.size} bytes "
                        f"but the bundle ends {size - info.offset_data} bytes into it"
                    )
                seen[path] = info
                on_progress(end, size)
                end = info.offset_data + (-(-info.size // BLOCK)) * BLOCK
    except tarfile.TarError as exc:
        message = str(exc)
        if "unexpected end" in message or "truncated" in message:
            raise _fail(f"the tar is truncated: {message}") from None
        raise _fail(f"not a tar archive: {message}") from None
    except EOFError as exc:
        raise _fail(f"the tar is truncated: {exc}") from None
    if not seen and not folders:
        raise _fail("not a tar archive: no members")
    for path in seen:  # a file may not sit where a folder's contents go
        for folder_of_file in _ancestors(path):
            if folder_of_file in seen:
                raise _fail(f"member {folder_of_file!r} is both a file and a folder")
    _check_end_marker(tar_path, end, size)
    bundle = Bundle(tar_path=tar_path, size=size, folders=folders)
    bag = _bag_root(list(seen))
    if bag is not None:
        bundle.bag_root = bag
        prefix = f"{bag}/" if bag else ""
        bundle.bag_members = {p[len(prefix) :]: i for p, i in seen.items()}
        return bundle
    for path, info in seen.items():
        if path == METADATA_NAME:
            bundle.metadata = info
        elif path.startswith(f"{DATA_DIR}/"):
            bundle.files[path[len(DATA_DIR) + 1 :]] = info
        else:
            raise _fail(f"member {path!r} is neither metadata.txt nor under data/")
    return bundle


def _ancestors(path: str) -> list[str]:
    parts = path.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


def _check_end_marker(tar_path: Path, end: int, size: int) -> None:
    """A complete tar ends with a zero block after the last member; a cut one does not."""
    if end + BLOCK > size:
        raise _fail("the tar is truncated: its end-of-archive marker is missing")
    with open(tar_path, "rb") as f:
        f.seek(end)
        marker = f.read(BLOCK)
    if marker.count(0) != BLOCK:
        raise _fail("the tar is truncated or damaged after its last member")


class MemberReader:
    """Reads exactly one member's bytes from the spooled tar, in chunks."""

    def __init__(self, tar_path: Path, info: tarfile.TarInfo) -> None:
        self._f = open(tar_path, "rb", buffering=0)  # noqa: SIM115 (closed in close())
        self._f.seek(info.offset_data)
        self._left = info.size

    def read(self, n: int = -1) -> bytes:
        if self._left <= 0:
            return b""
        n = self._left if n < 0 else min(n, self._left)
        block = self._f.read(n)
        if not block:
            raise BundleError(OPEN_TAR, "the tar is truncated")
        self._left -= len(block)
        return block

    def readinto(self, buf: bytearray | memoryview) -> int:
        if self._left <= 0:
            return 0
        view = memoryview(buf)
        if len(view) > self._left:
            view = view[: self._left]
        n = self._f.readinto(view)
        if not n:
            raise BundleError(OPEN_TAR, "the tar is truncated")
        self._left -= n
        return n

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> MemberReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_small_member(tar_path: Path, info: tarfile.TarInfo, limit: int, what: str) -> bytes:
    if info.size > limit:
        raise BundleError(OPEN_TAR, f"{what} is {info.size} bytes; at most {limit} are allowed")
    with MemberReader(tar_path, info) as r:
        return r.read(info.size)
