"""An endpoint opened for I/O: an fsspec filesystem plus the root it is confined to."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from dataferry.endpoints.options import flag
from dataferry.endpoints.paths import join
from dataferry.errors import DataferryError, Forbidden

#: the largest size a file can have: a signed 64-bit file offset (and a BIGINT column)
MAX_FILE_SIZE = 2**63 - 1
#: the latest modification time we keep, in nanoseconds since 1970 (a BIGINT column;
#: the year 2262). Times before 1970 are not kept.
MAX_MTIME_NS = 2**63 - 1

#: ``passed_over(path, is_folder)`` of ``files_below``
Skip = Callable[[str, bool], bool]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _datetime_ns(when: datetime) -> int:
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    delta = when - _EPOCH
    return (delta.days * 86400 + delta.seconds) * 10**9 + delta.microseconds * 1000


def mtime_ns_of(info: dict[str, Any]) -> int | None:
    """A file's modification time in nanoseconds from an fsspec listing entry, or None
    where the protocol does not tell (or tells nonsense): ``mtime_ns`` (ours, exact),
    ``mtime`` (seconds or a datetime), ``LastModified`` (S3), ``Last-Modified`` (HTTP)."""
    try:
        value = info.get("mtime_ns")
        if type(value) is int:
            ns = value
        elif (value := info.get("mtime")) is not None or (
            value := info.get("LastModified")
        ) is not None:
            if isinstance(value, datetime):
                ns = _datetime_ns(value)
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                ns = round(value * 10**9)
            else:
                return None
        elif isinstance(value := info.get("Last-Modified"), str):
            ns = _datetime_ns(parsedate_to_datetime(value))
        else:
            return None
    except (TypeError, ValueError, OverflowError):
        return None
    return ns if 0 <= ns <= MAX_MTIME_NS else None


class EndpointFS:
    """Paths given to its methods are clean relative paths (see ``paths.clean_relative``).

    Backends subclass it where the protocol needs more checks (local symlinks)."""

    #: whether an interrupted file can be continued from an offset: as a source
    #: (read from an offset) and as a destination (append to a partial file)
    resumable = False
    #: whether a file's modification time here is the one ``set_mtime`` gave it (so it
    #: can tell that a copy is already there); an object store's is its upload time
    keeps_mtime = False
    #: whether a folder exists here without a file in it (an object store has none)
    keeps_folders = True

    def __init__(self, name: str, fs: Any, root: str, options: dict[str, Any]) -> None:
        self.name = name
        self.fs = fs
        self.root = root.rstrip("/") or "/"
        self.options = options

    @property
    def storage_id(self) -> str:
        """Equal for two endpoints whose full paths name the same storage namespace."""
        protocol = self.fs.protocol
        return protocol if isinstance(protocol, str) else protocol[0]

    def full(self, rel: str) -> str:
        return join(self.root, rel) if self.root != "/" else "/" + rel

    def rel(self, full: str) -> str:
        prefix = self.root.rstrip("/") + "/"
        if full == self.root:
            return ""
        if not full.startswith(prefix):
            raise ValueError(f"{full} is not below {self.root}")
        return full[len(prefix) :]

    def check_inside(self, rel: str) -> None:
        """Refuse a path that leaves the root through a link (protocols without links: no-op)."""

    def files_below(
        self, full: str, passed_over: Skip | None = None
    ) -> list[tuple[str, int, int | None]]:
        """Every file under the folder ``full`` (full path, size, modification time in
        nanoseconds or None), at any depth; refuses links that leave the root
        (``check_inside``). ``passed_over(path, is_folder)``, given a path relative to
        ``full``, says what the caller will not take: such a file is left out of the
        answer (callers need not check again), and backends that walk the tree
        themselves do not list such a folder nor check such a file (its name, its kind,
        where its link leads)."""
        base = self.rel(full)
        files = []
        for path, entry in self.fs.find(full, detail=True, withdirs=False).items():
            rel = self.rel(path)
            if passed_over is not None and passed_over(
                rel[len(base) + 1 :] if base else rel, False
            ):
                continue
            self.check_inside(rel)
            files.append((path, int(entry.get("size") or 0), mtime_ns_of(entry)))
        return files

    def empty_folders_below(self, full: str, taken: Callable[[str], bool]) -> list[str]:
        """Folders under the folder ``full`` that hold nothing at all (paths relative to
        ``full``, sorted) and that ``taken(path)`` accepts; refuses links that leave the
        root. Only asked for by transfers that keep empty folders: it lists every
        folder of the tree."""
        base = self.rel(full)
        folders: set[str] = set()
        holding: set[str] = set()
        for path, entry in self.fs.find(full, detail=True, withdirs=True).items():
            rel = self.rel(path)
            if rel == base:
                continue
            inner = rel[len(base) + 1 :] if base else rel
            if entry.get("type") == "directory":
                folders.add(inner)
            holding.add(inner.rpartition("/")[0])
        empty = sorted(f for f in folders - holding if taken(f))
        for folder in empty:
            self.check_inside(join(base, folder) if base else folder)
        return empty

    def mtime_of(self, full: str, info: dict[str, Any]) -> int | None:
        """The modification time (nanoseconds) of the file ``full`` whose fsspec
        ``info`` is given, or None where the protocol cannot tell."""
        return mtime_ns_of(info)

    def check_writable(self, rel: str) -> None:
        if flag(self.options.get("read_only", False)):
            raise Forbidden(f"endpoint {self.name!r} is read-only")

    # -- file I/O the transfer engine uses; backends may override for speed ----------
    def open_read(self, full: str, size: int | None = None) -> Any:
        """Open for reading. ``size``, when given, is the size the file is expected to
        have (from a listing): a hint for backends that can save a round trip with it;
        the file is still read to its real end."""
        return self.fs.open(full, "rb")

    def open_write(self, full: str) -> Any:
        return self.fs.open(full, "wb")

    def open_read_at(self, full: str, offset: int) -> Any:
        """Open for reading from byte ``offset`` (byte-level resume)."""
        f = self.open_read(full)
        if offset:
            f.seek(offset)
        return f

    def read_range(self, full: str, offset: int, length: int) -> bytes:
        """Up to ``length`` bytes from ``offset`` (the resume check reads a file's tail)."""
        out = bytearray()
        with self.open_read_at(full, offset) as f:
            while len(out) < length and (block := f.read(length - len(out))):
                out += block
        return bytes(out)

    def open_append(self, full: str) -> Any:
        """Open an existing file to add bytes at its end (byte-level resume)."""
        return self.fs.open(full, "ab")

    def classify(self, exc: BaseException, what: str) -> DataferryError | None:
        """A protocol's own reading of a driver error (transient or permanent), or None
        to leave it to the generic rules. The message names the endpoint, never a secret."""
        return None

    def make_durable(self, fobj: Any) -> None:
        """Called on a file opened by ``open_write`` before it is closed: make the bytes
        durable before the file is renamed into place (where the protocol can)."""

    def set_mtime(self, fobj: Any, full: str, mtime_ns: int) -> None:
        """Called on a file opened by ``open_write``/``open_append`` (``full``) after its
        last byte is written and before ``make_durable``: give it this modification
        time, without a round trip of its own where the protocol allows. Protocols
        that cannot (object stores) do nothing."""

    def set_mtime_at(self, full: str, mtime_ns: int) -> None:
        """Give the closed file ``full`` this modification time (the peer protocol's
        receiving side, for an upload committed in a later request). Nothing where the
        protocol cannot."""

    def start_writeback(self, fobj: Any, offset: int, length: int) -> None:
        """A hint, called while a large file is being written: start writing the bytes
        just written to ``fobj`` at ``offset`` to stable storage without waiting, so
        ``make_durable`` at the end has little left to do. Nothing by default."""

    def make_durable_many(self, fulls: list[str]) -> None:
        """Make several closed files durable at once (before they are renamed). Backends
        with a cheaper group sync than one ``make_durable`` per file override it and
        set ``group_sync``."""

    #: whether ``make_durable_many`` is cheaper than syncing files one by one
    group_sync = False

    #: whether ``put_in_place_many`` is cheaper than putting files in place one by one
    batch_put = False

    #: whether writing a file creates its missing folders (the transfer engine then
    #: does not create them first)
    creates_parents = False

    def put_in_place_many(self, items: list[tuple[str, str, int]]) -> None:
        """Make each ``(temporary, final, size)`` durable, check that it holds ``size``
        bytes and rename it to ``final``, for a whole group at once (backends that set
        ``batch_put``: one round trip instead of several per file). A failure may leave
        the group partly in place; every file in place was checked."""
        raise NotImplementedError

    def size(self, full: str) -> int:
        return int(self.fs.size(full))

    def exists(self, full: str) -> bool:
        return bool(self.fs.exists(full))

    def info_or_none(self, full: str) -> dict[str, Any] | None:
        """fsspec's ``info`` of ``full`` (at least ``size``), or None when nothing is
        there: one request where ``exists`` and then ``info`` or ``size`` would be two
        (a round trip each on SFTP and to a peer)."""
        try:
            return dict(self.fs.info(full))
        except FileNotFoundError:
            return None

    def rename(self, src: str, dst: str) -> None:
        """Move ``src`` onto ``dst`` (replacing it) in one step where the protocol can."""
        self.fs.mv(src, dst)

    def remove(self, full: str) -> None:
        self.fs.rm(full)

    def makedirs(self, full: str) -> None:
        self.fs.makedirs(full, exist_ok=True)

    def remove_dir(self, full: str) -> None:
        """Remove an empty folder (after a move); protocols without folders do nothing."""
        self.fs.rmdir(full)

    def close(self) -> None:
        """Release connections (remote protocols)."""
